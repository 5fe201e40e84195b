import io

from llmux_jupyter.render import JupyterLiveOutput, TerminalLiveOutput, mime_bundle


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def recorder():
    calls = []
    return calls, lambda bundle, metadata, update: calls.append((bundle, metadata, update))


def test_updates_are_coalesced_to_the_rate_limit():
    calls, publish = recorder()
    clock = FakeClock()
    output = JupyterLiveOutput("markdown", 10, publish, clock)
    for _ in range(1000):  # 1000 tokens over one second
        output.append("x")
        clock.now += 0.001
    assert 9 <= len(calls) <= 11
    assert calls[0][2] is False and all(update for _, _, update in calls[1:])
    output.finish({"model": "m"})
    bundle, metadata, update = calls[-1]
    assert bundle["text/markdown"] == "x" * 1000
    assert metadata == {"llmux": {"model": "m"}} and update


def test_first_token_is_shown_at_once():
    calls, publish = recorder()
    JupyterLiveOutput("markdown", 15, publish, FakeClock()).append("Hi")
    assert calls[0][0]["text/markdown"] == "Hi"


def test_interrupted_answer_is_marked():
    calls, publish = recorder()
    output = JupyterLiveOutput("markdown", 15, publish, FakeClock())
    output.append("partial")
    output.finish({}, interrupted=True)
    assert calls[-1][0]["text/markdown"].startswith("partial\n\n*⏹ interrupted*")


def test_formats():
    assert mime_bundle("a", "text") == {"text/plain": "a"}
    assert mime_bundle("x = 1", "code")["text/markdown"] == "```\nx = 1\n```"
    assert mime_bundle('{"a": 1}', "json", final=True)["application/json"] == {"a": 1}
    assert "application/json" not in mime_bundle("{broken", "json", final=True)


def test_terminal_output_prints_as_it_streams():
    stream = io.StringIO()
    output = TerminalLiveOutput(stream)
    output.append("Hello")
    assert stream.getvalue() == "Hello"
    output.append(" world")
    output.finish({}, interrupted=True)
    assert stream.getvalue() == "Hello world\n[interrupted]\n"
