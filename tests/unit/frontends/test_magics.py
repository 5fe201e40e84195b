"""The magics in a real IPython shell (terminal flavour), driving the echo backend."""

import pytest
from IPython.core.error import UsageError

from llmux_jupyter.errors import (
    ContextOverflow,
    InvalidParameter,
    ModelNotLoaded,
    RegistrationError,
    UnknownModel,
)

from ..conftest import held


def cell(shell, line, body):
    return shell.run_cell_magic("llm", line, body)


def test_cell_streams_to_the_terminal_and_stores_output(shell, fake_llm, capsys):
    shell.user_ns["topic"] = "GPUs"
    cell(shell, "-o answer --max-tokens 3", "tell me about {topic} {{now}} please")
    assert capsys.readouterr().out == "tell me about\n"
    assert shell.user_ns["answer"] == "tell me about"
    assert fake_llm.threads.get().turns[-1].user == "tell me about GPUs {now} please"
    assert fake_llm.last.params == {"max_tokens": 3}


def test_raw_sends_braces_untouched(shell, fake_llm):
    cell(shell, "--raw", '{"json": 1}')
    assert fake_llm.threads.get().turns[-1].user == '{"json": 1}'


@pytest.mark.parametrize(
    ("line", "body", "error", "message"),
    [
        ("", "   \n", UsageError, "needs a prompt"),
        ("--bogus", "hi", UsageError, "unrecognized arguments: --bogus"),
        ("--temperature hot", "hi", UsageError, "invalid float value: 'hot'"),
        ("--max-tokens 0", "hi", Exception, "max_tokens must be between"),
        ("--temperature 9", "hi", Exception, "temperature must be between"),
        ("-f yaml", "hi", UsageError, "invalid choice: 'yaml'"),
        ("-o 1bad", "hi", UsageError, "give a Python variable name"),
        ("-m nope", "hi", UnknownModel, "No model named 'nope'"),
        ("", "{undefined_var}", UsageError, "no variable 'undefined_var'"),
    ],
)
def test_bad_cells_raise_one_clear_error_and_change_nothing(
    shell, fake_llm, line, body, error, message
):
    cell(shell, "-o answer", "keep this")
    before = [(t.user, t.assistant) for t in fake_llm.threads.get().turns]
    loaded = [m.name for m in fake_llm.ps()]
    with pytest.raises(error, match=message):
        cell(shell, line, body)
    assert [(t.user, t.assistant) for t in fake_llm.threads.get().turns] == before
    assert [m.name for m in fake_llm.ps()] == loaded
    assert shell.user_ns["answer"] == "keep this"


def test_load_ps_use_unload(shell, fake_llm, capsys):
    shell.run_line_magic("llm", "load echo --set n_ctx=64")
    assert "echo loaded on cpu" in capsys.readouterr().out
    assert fake_llm.manager.get_loaded("echo").backend.settings == {"n_ctx": 64}
    shell.run_line_magic("llm", "ps")
    table = capsys.readouterr().out
    assert "echo" in table and "idle" in table and "976 B" not in table
    assert table.splitlines()[1].split()[-1] == "threads"  # the echo backend does not say
    assert table.splitlines()[3].split()[-1] == "-"
    shell.run_line_magic("llm", "use flaky")
    assert "flaky is now the default for %%llm" in capsys.readouterr().out
    shell.run_line_magic("llm", "unload --all")
    assert "Unloaded echo." in capsys.readouterr().out
    with pytest.raises(ModelNotLoaded, match="not loaded"):
        shell.run_line_magic("llm", "unload echo")


def test_ps_all_shows_the_other_kernels_models(shell, fake_llm, capsys, other_kernel):
    other_kernel.hold(held("smollm2", 3 * 2**20), notebook="/home/me/analysis.ipynb")
    shell.run_line_magic("llm", "ps")
    plain = capsys.readouterr().out
    assert "other kernels" in plain and "3.0 MiB" in plain  # the memory table's column
    assert "analysis.ipynb" not in plain
    shell.run_line_magic("llm", "ps --all")
    table = capsys.readouterr().out
    assert "Models of the other kernels on this machine" in table
    row = next(line for line in table.splitlines() if "analysis.ipynb" in line)
    assert row.split() == [
        "/home/me/analysis.ipynb", str(other_kernel.pid), "smollm2", "echo", "cpu",
        "3.0", "MiB", "3.0", "MiB",
    ]  # fmt: skip


def test_list_shows_models_and_backends(shell, capsys, model_file):
    shell.run_line_magic("llm", "list")
    out = capsys.readouterr().out
    assert "echo" in out and "chat" in out and str(model_file) in out and "1000 B" in out
    assert "llamacpp" in out and "Running" in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("frobnicate", "invalid choice: 'frobnicate'"),
        ("unload", "%llm unload NAME, or %llm unload --all"),
        ("load", "the following arguments are required: name"),
        ("load echo --set nokey", "write KEY=VALUE"),
        ("load echo --dtype float64", "invalid choice: 'float64'"),
        ("load echo --set device=cpu", "use --device instead"),
        ("help nope", "No command 'nope'"),
        ("threads nope", "No thread named 'nope'"),
    ],
)
def test_bad_commands_are_usage_errors(shell, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("llm", line)


def test_register_persists_and_unregister(shell, fake_llm, model_file, capsys):
    shell.run_line_magic("llm", f"register mine --backend echo --path {model_file} --set n_ctx=8")
    assert "Registered mine (echo, chat" in capsys.readouterr().out
    assert fake_llm.manager.catalog.get("mine").settings == {"n_ctx": 8}
    assert "mine" in fake_llm.manager.catalog.store_path.read_text()
    shell.run_line_magic("llm", "unregister mine")
    assert "mine" not in fake_llm.manager.catalog.names()


def test_help_lists_every_command(shell, capsys):
    shell.run_line_magic("llm", "")
    out = capsys.readouterr().out
    for command in ("list", "load", "unload", "ps", "use", "register", "threads", "help"):
        assert f"%llm {command}" in out
    shell.run_line_magic("llm", "help load")
    assert "--device" in capsys.readouterr().out


def test_threads_listing(shell, capsys):
    cell(shell, "--thread side --system terse", "hello there")
    shell.run_line_magic("llm", "threads")
    assert "side" in capsys.readouterr().out
    shell.run_line_magic("llm", "threads side")
    assert "hello there" in capsys.readouterr().out


def test_register_refuses_a_name_in_use_unless_forced(shell, fake_llm, model_file, capsys):
    shell.run_line_magic("llm", "load echo")
    with pytest.raises(
        RegistrationError, match=r"'echo' is a built-in model \(echo, chat, .*--force"
    ):
        shell.run_line_magic("llm", f"register echo --backend echo --path {model_file}")
    assert [m.name for m in fake_llm.ps()] == ["echo"]
    capsys.readouterr()
    shell.run_line_magic(
        "llm", f"register echo --backend echo --path {model_file} --force --set n=8"
    )
    assert capsys.readouterr().out.endswith(", replacing the model of that name.\n")
    assert fake_llm.ps() == []  # the model it replaced was unloaded
    assert fake_llm.manager.catalog.get("echo").settings == {"n": 8}


def test_an_empty_answer_is_a_note_not_a_blank(shell, fake_llm, model_file, capsys):
    fake_llm.register("quiet", backend="echo", path=str(model_file), silent=True)
    cell(shell, "-m quiet --stop end -o answer --thread q", "say nothing")
    out = capsys.readouterr().out
    assert out.startswith("\n(The model produced no text (stop reason: stop; 0 tokens after a 2")
    assert "a --stop string matched at once; or the model ended at once" in out
    assert shell.user_ns["answer"] == "" and fake_llm.threads.get("q").turns == []


TEN_WORDS = "one two three four five six seven eight nine ten"


def test_turns_left_out_are_one_quiet_line_and_threads_shows_them(shell, fake_llm, capsys):
    for _ in range(3):  # the "small" echo model's window is 60: one earlier turn fits
        cell(shell, "-m small --max-tokens 10", TEN_WORDS)
    out = capsys.readouterr().out
    assert out.endswith(
        f"{TEN_WORDS}\n(1 earlier turn of thread 'default' left out to fit the 60-token context)\n"
    )
    shell.run_line_magic("llm", "threads default")
    table = capsys.readouterr().out
    assert [word in table for word in ("tokens", "left out", "in prompt", "answer", "30")] == [
        True
    ] * 5


def test_context_error_refuses_and_changes_nothing(shell, fake_llm):
    for _ in range(2):
        cell(shell, "-m small --max-tokens 10", TEN_WORDS)
    with pytest.raises(ContextOverflow, match="--context error forbids"):
        cell(shell, "-m small --max-tokens 10 --context error", TEN_WORDS)
    assert len(fake_llm.threads.get().turns) == 2
    with pytest.raises(UsageError, match="invalid choice: 'drop'"):
        cell(shell, "--context drop", "hi")


def test_settings_are_checked_before_loading(shell, fake_llm, model_file):
    with pytest.raises(InvalidParameter, match="n_ctx='abc': give a whole number"):
        shell.run_line_magic("llm", f"register big --backend llamacpp --path {model_file} "
                             "--set n_ctx=abc")  # fmt: skip
    with pytest.raises(InvalidParameter, match="Did you mean n_ctx"):
        fake_llm.register("big", backend="llamacpp", path=str(model_file), n_cxt=4096)
    spec = fake_llm.register("big", backend="llamacpp", path=str(model_file), n_ctx="4096")
    assert spec.settings == {"n_ctx": 4096}


# -- a model unloaded between two steps of one command (keep-alive, eviction) --------------
def test_load_keep_alive_zero_on_a_loaded_model_loads_until_its_next_use(shell, fake_llm, capsys):
    shell.run_line_magic("llm", "load echo")
    capsys.readouterr()
    shell.run_line_magic("llm", "load echo --keep-alive 0")
    out = capsys.readouterr().out
    assert "echo is already loaded on cpu" in out
    assert out.strip().endswith("Keep-alive 0: it unloads after its next use.")
    assert fake_llm.manager.is_loaded("echo")
    cell(shell, "--max-tokens 2", "one two three")
    assert not fake_llm.manager.is_loaded("echo")
    shell.run_line_magic("llm", "load echo --keep-alive 0")  # and on an unloaded model
    out = capsys.readouterr().out
    assert "echo loaded on cpu in" in out and "it unloads after its next use" in out
    assert fake_llm.manager.is_loaded("echo")


def test_unpin_says_when_keep_alive_zero_unloads_the_model(shell, fake_llm, capsys):
    shell.run_line_magic("llm", "load echo --keep-alive 0 --pin")
    shell.run_line_magic("llm", "unpin echo")
    said = capsys.readouterr().out.strip()
    assert said.endswith("echo is no longer pinned; keep-alive 0 unloaded it.")
    assert not fake_llm.manager.is_loaded("echo")


def test_ps_and_list_read_models_that_went_since_they_were_listed(shell, fake_llm, capsys):
    """The keep-alive timer may unload a model after ``ps()`` listed it and before its row
    is drawn: the row shows what the load was, never a raw AttributeError."""
    listed = [fake_llm.load("echo")]
    fake_llm.unload("echo")
    fake_llm.ps = lambda: listed
    fake_llm.manager.loaded = lambda: listed
    shell.run_line_magic("llm", "ps")
    shell.run_line_magic("llm", "list")
    out = capsys.readouterr().out
    assert "echo" in out and "cpu" in out


@pytest.mark.parametrize(
    "line", ["unregister mine", "register mine --backend echo --path {} --force"]
)
def test_register_and_unregister_survive_a_keep_alive_between_check_and_unload(
    shell, fake_llm, model_file, line
):
    shell.run_line_magic("llm", f"register mine --backend echo --path {model_file}")
    fake_llm.load("mine")
    manager = fake_llm.manager
    is_loaded = manager.is_loaded

    def expires_right_after(name):  # the timer thread unloads it just after the check
        answer = is_loaded(name)
        if answer:
            manager.unload(name)
        return answer

    manager.is_loaded = expires_right_after
    shell.run_line_magic("llm", line.format(model_file))
    assert not is_loaded("mine")
