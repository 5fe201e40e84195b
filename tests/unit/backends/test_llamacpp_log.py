"""llama.cpp's log callback: pieces joined into lines, logged at their level, echoed only in a
verbose scope, errors kept for the load's message. Driven the way llama.cpp calls it."""

from __future__ import annotations

import logging

from llmux_jupyter.backends import llamacpp_log

DEBUG, INFO, WARN, ERROR, CONT = 1, 2, 3, 4, 5


def say(level: int, text: str) -> None:
    llamacpp_log._on_log(level, text.encode(), None)


def test_pieces_become_lines_at_their_level(caplog):
    caplog.set_level(logging.DEBUG, logger="llmux_jupyter.native")
    say(INFO, "llama_model_load: loading")
    say(CONT, " model")
    say(CONT, "...\n")
    say(WARN, "llama_kv_cache_iswa: using full-size SWA cache\n")
    say(DEBUG, "load: control token\n")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "llama_model_load: loading model..."),
        ("WARNING", "llama_kv_cache_iswa: using full-size SWA cache"),
        ("DEBUG", "load: control token"),
    ]
    assert all(r.name == "llmux_jupyter.native.llama_cpp" for r in caplog.records)


def test_a_scope_keeps_errors_and_echoes_only_when_verbose(capsys):
    with llamacpp_log.scope() as quiet:
        say(ERROR, "llama_model_load: error loading model: missing tensor\n")
        say(INFO, "print_info: file type = Q4_1\n")
    assert quiet.errors == ["llama_model_load: error loading model: missing tensor"]
    assert capsys.readouterr().err == ""
    with llamacpp_log.scope(verbose=True) as loud:
        say(INFO, "print_info: file type = Q4_1\n")
    assert loud.errors == [] and capsys.readouterr().err == "print_info: file type = Q4_1\n"
    say(ERROR, "outside any scope\n")
    assert quiet.errors == ["llama_model_load: error loading model: missing tensor"]


def test_install_replaces_llama_cpp_python_s_callback():
    import llama_cpp

    llamacpp_log.install()
    first = llamacpp_log._callback
    llamacpp_log.install()
    assert llamacpp_log._callback is first  # one ctypes object, kept alive
    assert isinstance(first, llama_cpp.llama_log_callback)
