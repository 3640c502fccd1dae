"""The shipped accelerate config files parse and pass accelerate's own launch checks and plugin set-up.

test_distributed.py and test_engines.py launch all three files on CPU processes. Here each file goes
through the checks that `accelerate launch` runs before it starts any process, and through the plugin
classes whose options physlora's engines read.
"""

from __future__ import annotations

import pytest
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

from physlora.train.launch import accelerate_config, launch_command


def _launch_arguments(name: str):
    parsed = launch_command_parser().parse_args(["--config_file", str(accelerate_config(name)), "train.py"])
    arguments, defaults, _ = _validate_launch_command(parsed)
    return arguments, defaults


@pytest.mark.parametrize("name, distributed_type", [
    ("ddp", DistributedType.MULTI_GPU), ("fsdp", DistributedType.FSDP), ("deepspeed", DistributedType.DEEPSPEED),
])
def test_config_parses_with_accelerate_classes(name, distributed_type):
    config = ClusterConfig.from_yaml_file(str(accelerate_config(name)))
    assert config.distributed_type == distributed_type
    assert config.num_machines == 1
    assert config.main_process_ip == "127.0.0.1"


def test_ddp_config_selects_torchrun_launcher():
    arguments, _ = _launch_arguments("ddp")
    # multi_gpu picks accelerate's torchrun launcher; without CUDA the processes use the CPU and gloo.
    assert arguments.multi_gpu
    assert not (arguments.use_fsdp or arguments.use_deepspeed or arguments.cpu)
    assert prepare_multi_gpu_env(arguments)["ACCELERATE_MIXED_PRECISION"] == "no"


def test_fsdp_config_builds_plugin(monkeypatch):
    arguments, _ = _launch_arguments("fsdp")
    assert arguments.use_fsdp
    environment = prepare_multi_gpu_env(arguments)
    for key, value in environment.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    assert plugin.cpu_ram_efficient_loading is True
    # training.precision drives autocast, so accelerate's own mixed precision stays off.
    assert environment["ACCELERATE_MIXED_PRECISION"] == "no"


def test_deepspeed_config_builds_plugin(monkeypatch):
    arguments, defaults = _launch_arguments("deepspeed")
    assert arguments.use_deepspeed
    arguments.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
    _, environment = prepare_deepspeed_cmd_env(arguments)
    for key, value in environment.items():
        if key.startswith("ACCELERATE_"):
            monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == 2
    assert plugin.deepspeed_config["zero_optimization"]["offload_optimizer"]["device"] == "none"


def test_launch_command_uses_ddp_config_on_loopback():
    command = launch_command(3, ["train", "--preset", "tiny"], port=12345)
    assert command[command.index("--config_file") + 1] == str(accelerate_config("ddp"))
    assert command[command.index("--num_processes") + 1] == "3"
    assert command[command.index("--main_process_ip") + 1] == "127.0.0.1"
    assert command[command.index("--main_process_port") + 1] == "12345"
    assert command[-3:] == ["train", "--preset", "tiny"]
