"""How many GPUs a cell uses (tensor x pipeline x data parallel) and which: one place decides,
for NVML and for Ray alike; naming GPUs on a Ray cluster is refused upfront."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.cluster.sweep import ClusterSweep
from harness.config import ConfigError, ExperimentConfig, load_config
from harness.contract.placement import ClusterView
from harness.contract.plan import build_plan
from harness.run.runner import open_energy_monitor
from harness.store.run_store import RunStore, write_model
from harness.telemetry.gpus import TelemetryError, VisibleDevices, visible_devices
from harness.telemetry.monitor import EnergyMonitor

from . import factories
from .fake_pynvml import H100_TRACE, H200_TRACE, fake_box, fake_nvml
from .test_config import GOOD
from .test_nvml import NO_RAPL

H200_UUID = "GPU-244893c0-639e-beee-6e52-ca33c7f9a59b"
H100_UUID = "GPU-9eaabf72-85d6-e33a-9388-c7a0e1c99526"


def config(**changes) -> ExperimentConfig:
    return ExperimentConfig.model_validate({**GOOD, **changes})


def test_a_cell_uses_tensor_x_pipeline_x_data_parallel_gpus():
    plan = build_plan(config(matrix={"tensor_parallel_size": [1, 2], "variants": {
        "plain": {}, "pp": {"pipeline_parallel_size": 2},
        "dp": {"data-parallel-size": 3, "pipeline_parallel_size": 2}}}))
    assert {cell.id: cell.gpus for cell in plan} == {
        "plain": 1, "plain-tp2": 2, "pp": 2, "pp-tp2": 4, "dp": 6, "dp-tp2": 12}
    engine_wide = build_plan(config(engine={"options": {"pipeline_parallel_size": 2}}))
    assert [cell.gpus for cell in engine_wide] == [2, 2]  # (batch 2 and 4)


def test_nvml_measures_every_gpu_of_a_pipeline_parallel_cell():
    cell = build_plan(config(engine={"options": {"pipeline_parallel_size": 2}}))[0]
    nvml = fake_box(H200_TRACE, 4)
    with open_energy_monitor(config(), cell, nvml=nvml, sample_hz=None,
                             rapl_root=NO_RAPL) as monitor:
        assert [gpu.index for gpu in monitor.gpus] == [0, 1]


class FakeRay:
    """What ClusterSweep asks of Ray when it places a cell: the nodes, and a task to submit."""

    def __init__(self, gpus_per_node: float):
        self.gpus_per_node = gpus_per_node
        self.submitted: list[dict] = []

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": {"GPU": self.gpus_per_node}}]

    def options(self, **options):
        self.submitted.append(options)
        return self

    def remote(self, *args):
        return "task"


class Display:
    """The driver's display, showing nothing."""

    def __call__(self, event) -> None: ...
    def advance(self, count: int) -> None: ...
    def cell_stopped(self, cell: str) -> None: ...


def sweep_of(tmp_path, experiment: ExperimentConfig, gpus_per_node: float) -> ClusterSweep:
    store = RunStore(tmp_path / "out")
    write_model(store.run_json, factories.manifest())
    ray = FakeRay(gpus_per_node)
    sweep = ClusterSweep(ray, experiment, "test", store, Display(),
                         ClusterView(address="auto", ray_version="2.60.0", nodes=[],
                                     mismatches=[]))
    sweep.task, sweep.sink = ray, None  # (what run() sets up before it submits)
    return sweep


def test_ray_reserves_and_checks_every_gpu_of_the_cell(tmp_path):
    experiment = config(executor={"kind": "ray"},
                        matrix={"tensor_parallel_size": [2],
                                "variants": {"pp": {"pipeline_parallel_size": 2}}})
    (cell,) = build_plan(experiment)
    roomy = sweep_of(tmp_path / "a", experiment, 4)
    assert roomy.schedulable(cell)
    roomy.submit(cell, 0)
    assert roomy.ray.submitted[0]["num_gpus"] == 4
    small = sweep_of(tmp_path / "b", experiment, 2)
    assert not small.schedulable(cell)
    assert small.outcome.failed_cells == {
        "pp-tp2": "unschedulable: needs 4 GPU(s) on one node; the largest live node has 2"}


# --- which GPUs: one place decides ---------------------------------------------------------


def test_the_cells_gpus_come_from_engine_gpus_then_engine_env_then_the_environment():
    environ = {"CUDA_VISIBLE_DEVICES": "3", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert visible_devices("0,1", {"CUDA_VISIBLE_DEVICES": "2"}, environ) == \
        VisibleDevices("0,1", "PCI_BUS_ID")
    assert visible_devices(None, {"CUDA_VISIBLE_DEVICES": "2",
                                  "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}, environ) == \
        VisibleDevices("2", "FASTEST_FIRST")
    assert visible_devices(None, {}, environ) == VisibleDevices("3", "PCI_BUS_ID")
    assert visible_devices(None, {}, {}) == VisibleDevices(None, None)


def open_with_order(nvml, visible: str, order: str | None) -> EnergyMonitor:
    return EnergyMonitor.open(visible, None, order=order, sample_hz=None, nvml=nvml,
                              clock=nvml.clock, rapl_root=NO_RAPL)


@pytest.mark.parametrize(("order", "visible", "uuids"), [
    (None, "1", [H100_UUID]),
    ("PCI_BUS_ID", "1,0", [H100_UUID, H200_UUID]),
    ("FASTEST_FIRST", H100_UUID, [H100_UUID]),  # a UUID means one GPU in any order
])
def test_indices_are_nvmls_pci_order(order, visible, uuids):
    with open_with_order(fake_nvml(H200_TRACE, H100_TRACE), visible, order) as monitor:
        assert [gpu.uuid for gpu in monitor.gpus] == uuids


def test_an_index_in_cudas_fastest_first_order_is_refused():
    nvml = fake_nvml(H200_TRACE, H100_TRACE)
    with pytest.raises(TelemetryError, match="CUDA_DEVICE_ORDER=FASTEST_FIRST"):
        open_with_order(nvml, "1", "FASTEST_FIRST")
    assert nvml.init_count == 0


# --- naming GPUs on a Ray cluster is refused upfront -----------------------------------------


@pytest.mark.parametrize("engine", [{"gpus": "0,1"}, {"env": {"CUDA_VISIBLE_DEVICES": "0"}}])
def test_naming_gpus_on_a_ray_cluster_is_a_config_error(tmp_path, engine):
    raw = {**GOOD, "engine": engine, "executor": {"kind": "ray"}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="on a Ray cluster each cell gets the GPUs Ray gives"):
        load_config(path)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()


def test_a_stored_ray_run_that_named_gpus_still_reads():
    raw = {**GOOD, "engine": {"gpus": "0"}, "executor": {"kind": "ray"}}
    stored = ExperimentConfig.model_validate(raw, context={"stored": True})
    assert stored.engine.gpus == "0"
    local = config(engine={"gpus": "0"})
    assert local.engine.gpus == "0"  # here (no Ray), naming GPUs is what engine.gpus is for


def test_hashes_of_configs_that_use_none_of_this_do_not_change():
    # the hashes these configs had before a cell's GPUs were decided in one place
    assert config().hash() == "13590ec653337c1a"
    assert config(engine={"gpus": "0", "env": {"A": "1"}}).hash() == "67371943f1240340"


def test_ray_from_the_command_line_refuses_named_gpus_too(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from harness.cli import app

    config = {"model": "dummy:tiny", "engine": {"gpus": "0"},
              "workload": {"input_tokens": 16, "output_tokens": 4},
              "load": {"concurrency": [1], "requests": 4}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["run", str(path), "--ray", "127.0.0.1:1", "--dry-run"])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: --ray: engine.gpus pins every cell to the same GPUs")
