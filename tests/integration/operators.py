"""What the table operators' kernel tests share: 20 reviews with a known sentiment, a counter of
the backend's batch calls inside the kernel, and the kernel's state that bad input must keep."""

from __future__ import annotations

REVIEWS = [
    ("I loved this film, it was wonderful.", "positive"),
    ("Terrible service, I want my money back.", "negative"),
    ("The food was cold and bland.", "negative"),
    ("Best purchase I have made all year!", "positive"),
    ("It broke after two days.", "negative"),
    ("Friendly staff and a lovely room.", "positive"),
    ("The plot was boring and far too long.", "negative"),
    ("Great value, works perfectly.", "positive"),
    ("I will never come back here.", "negative"),
    ("An absolute delight from start to finish.", "positive"),
    ("The battery dies within an hour.", "negative"),
    ("Fast delivery and well packed.", "positive"),
    ("Rude waiter and a dirty table.", "negative"),
    ("My kids adore this game.", "positive"),
    ("The screen cracked on day one.", "negative"),
    ("Beautiful views and a calm beach.", "positive"),
    ("Customer support never answered.", "negative"),
    ("Tasty, fresh and cheap.", "positive"),
    ("The app crashes constantly.", "negative"),
    ("A wonderful, moving performance.", "positive"),
]
TEXTS = [text for text, _ in REVIEWS]
TRUTH = [label for _, label in REVIEWS]
SETUP = (
    "import pandas as pd\n"
    f"reviews = pd.DataFrame({{'review': {TEXTS!r}, 'truth': {TRUTH!r}}})\n"
    "reviews.index = pd.Index([f'T-{n}' for n in range(101, 121)], name='ticket')\n"
    "empty = reviews.iloc[:0]\n"
    "keep = 'precious'\n"
)
SENTIMENT = "What is the sentiment of this review? Review: {review}"
# The kernel's loaded models (with their load times), its variables' names and ``keep``.
STATE = "(sorted((m.name, m.loaded_at, m.busy) for m in llm.ps()), keep, len(reviews))"


def count_batches(model: str) -> str:
    """Kernel code: ``batches`` counts the ``generate_batch`` calls of the loaded ``model``
    (the map's one way to the model); ``uncount()`` puts the method back."""
    return (
        f"batches = []\n_backend = llm.manager.get_loaded({model!r}).backend\n"
        "def _counted(*args, _original=_backend.generate_batch, **kwargs):\n"
        "    batches.append(len(args[0]))\n"
        "    return _original(*args, **kwargs)\n"
        "_backend.generate_batch = _counted\n"
        "def uncount():\n"
        "    del _backend.generate_batch\n"
    )
