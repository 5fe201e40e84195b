"""The built-in benchmark prompts: fixed (results stay comparable between runs and machines) and
varied in task and length (a one-line question to a paragraph to summarise), in an order where
any first few are already varied."""

from __future__ import annotations

BUILTIN_PROMPTS: tuple[str, ...] = (
    "What is the capital of France?",
    "Summarise this paragraph in two sentences:\n\n"
    "The printing press, developed by Johannes Gutenberg around 1440, changed how knowledge "
    "spread across Europe. Before it, books were copied by hand, which made them rare and "
    "expensive, and errors crept in with every copy. Movable metal type let printers produce "
    "hundreds of identical pages a day. Within fifty years, millions of books circulated, "
    "literacy rose, and scientists could share exact descriptions of their experiments. Some "
    "historians argue that the Reformation and the Scientific Revolution would have been "
    "impossible without it, because ideas could now travel faster than authorities could "
    "suppress them.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Write a short poem about the sea at night.",
    "List five tips for staying focused while studying.",
    "Translate into French: 'The weather is lovely today, let us walk to the market.'",
    "A train leaves at 9:40 and arrives at 13:15. How long is the journey? Explain briefly.",
    "Explain what a hash table is to someone who has never programmed.",
    "Classify the sentiment of this review as positive, negative or mixed, and say why: "
    "'The battery lasts for days and the screen is gorgeous, but the camera is a letdown "
    "and the software crashes now and then.'",
    "Give me a recipe for a simple tomato soup.",
    "Extract the names, dates and places from this text as a list:\n\n"
    "On 14 March 1879 Albert Einstein was born in Ulm. In 1896 he entered the Polytechnic "
    "in Zurich, and in 1905, while working at the patent office in Bern, he published four "
    "papers that changed physics. He moved to Berlin in 1914 and to Princeton in 1933.",
    "Why is the sky blue? Answer in three sentences.",
    "Write a polite email asking a colleague to review a document by Friday.",
    "What are the differences between a virus and a bacterium?",
    "Rewrite this sentence to be clearer: 'The report that was written by the team that was "
    "formed last year was submitted late due to the fact that data was missing.'",
    "Tell a short story about a robot who learns to paint.",
)
