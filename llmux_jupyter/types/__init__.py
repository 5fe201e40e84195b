"""Plain values every layer passes around (tasks, messages, sampling parameters, usage, memory
amounts, audio and transcripts). They import nothing of ours but errors and units."""
