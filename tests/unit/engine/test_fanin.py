import threading

import pytest

from llmux_jupyter.engine.fanin import THREAD_NAME, emitting, fan_in


def running_tasks() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == THREAD_NAME]


def test_every_item_of_every_task_arrives():
    cancel = threading.Event()

    def count(start):
        return lambda emit: [emit(n) for n in range(start, start + 3)]

    assert sorted(fan_in([count(0), count(10)], cancel)) == [0, 1, 2, 10, 11, 12]
    assert not cancel.is_set() and running_tasks() == []


def test_leaving_early_cancels_and_waits_for_every_task():
    cancel = threading.Event()

    def until_cancelled(emit):
        while not cancel.wait(0.01):
            emit("tick")

    for _ in fan_in([until_cancelled, until_cancelled], cancel):
        break
    assert cancel.is_set() and running_tasks() == []


def test_a_task_error_cancels_the_others_and_is_raised_once_all_are_done():
    cancel = threading.Event()
    stopped = []

    def fails(emit):
        raise RuntimeError("task broke")

    def until_cancelled(emit):
        cancel.wait(5)
        stopped.append(cancel.is_set())

    with pytest.raises(RuntimeError, match="task broke"):
        list(fan_in([fails, until_cancelled], cancel))
    assert stopped == [True] and running_tasks() == []


def test_inline_items_are_made_in_the_consumers_thread_between_the_tasks_items():
    cancel = threading.Event()
    made_in = []

    def here():
        for n in range(3):
            made_in.append(threading.current_thread() is threading.main_thread())
            yield f"here {n}"

    items = list(fan_in([emitting(["there"])], cancel, inline=here()))
    assert sorted(items) == ["here 0", "here 1", "here 2", "there"]
    assert made_in == [True, True, True] and running_tasks() == []
