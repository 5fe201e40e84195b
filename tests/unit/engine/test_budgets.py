import pytest
from traitlets import TraitError

from llmux_jupyter.config import LLMux
from llmux_jupyter.engine.budgets import charges, plan_budgets
from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.hardware.devices import Device
from llmux_jupyter.hardware.memory import DeviceMemory, host_devices
from llmux_jupyter.types.values import RequiredMemory

GIB = 2**30
HOST = [DeviceMemory("cpu", 32 * GIB, 20 * GIB), DeviceMemory("cuda:0", 24 * GIB, 22 * GIB)]


def test_default_budget_is_a_fraction_of_what_was_free():
    budgets = plan_budgets(HOST, "", 0.5)
    assert budgets["cpu"].budget == 10 * GIB and budgets["cuda:0"].budget == 11 * GIB
    assert budgets["cuda:0"].total == 24 * GIB


def test_budget_settings():
    assert plan_budgets(HOST, "12GiB")["cuda:0"].budget == 12 * GIB
    per_device = plan_budgets(HOST, "cuda:0=20GiB, cpu=4GiB")
    assert (per_device["cpu"].budget, per_device["cuda:0"].budget) == (4 * GIB, 20 * GIB)
    with pytest.raises(InvalidParameter, match="No device 'cuda:3'"):
        plan_budgets(HOST, "cuda:3=1GiB")
    with pytest.raises(InvalidParameter, match="memory_fraction"):
        plan_budgets(HOST, "", 1.5)


def test_charges_go_to_the_right_budget():
    memory = RequiredMemory(ram=100, vram=900)
    assert charges("cuda:1", memory) == {"cpu": 100, "cuda:1": 900}
    assert charges("cpu", RequiredMemory(ram=5)) == {"cpu": 5}
    assert charges("mps", memory) == {"cpu": 1000}  # unified memory
    assert charges("remote", memory) == {}


def test_host_devices_reads_ram_and_given_gpus():
    gpus = [Device("cuda", 0, "A", 24 * GIB, 20 * GIB), Device("mps")]
    found = host_devices(gpus)
    assert [d.device for d in found] == ["cpu", "cuda:0"]
    assert 0 < found[0].free <= found[0].total and found[1].free == 20 * GIB


def test_config_validates_budget_and_keep_alive():
    config = LLMux()
    config.memory_budget = "cpu=8GiB"
    config.keep_alive = "10m"
    with pytest.raises(TraitError, match="not a size"):
        config.memory_budget = "lots"
    with pytest.raises(TraitError, match="not a duration"):
        config.keep_alive = "soon"
    assert (config.memory_budget, config.keep_alive) == ("cpu=8GiB", "10m")


def test_the_default_budget_counts_what_other_kernels_held_as_free():
    """Every kernel gets the same default budget, however much the others had loaded when it
    started: the budget covers their models too."""
    held = {"cpu": 4 * GIB}
    budgets = plan_budgets(HOST, "", 0.5, elsewhere=held)
    assert budgets["cpu"].budget == 12 * GIB and budgets["cuda:0"].budget == 11 * GIB
    assert plan_budgets(HOST, "", 1.0, elsewhere={"cpu": 40 * GIB})["cpu"].budget == 32 * GIB
    assert plan_budgets(HOST, "cpu=1GiB", elsewhere=held)["cpu"].budget == GIB
