import os
import signal
import threading

import pytest

from llmux_jupyter.frontends.interrupts import sigint_cancels


def test_first_sigint_cancels_second_raises():
    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), sigint_cancels(cancel):
        os.kill(os.getpid(), signal.SIGINT)
        assert cancel.is_set()
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous
