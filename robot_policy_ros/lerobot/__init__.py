"""Import of Hugging Face LeRobot ``pretrained_model`` folders (ACT) into project checkpoints.

- :mod:`.source`: reads and validates a LeRobot folder (JSON and safetensors only; torch-free;
  LeRobot is never imported, nothing is unpickled).
- :mod:`.act`: maps LeRobot's ACT config and state dict onto :mod:`robot_policy_ros.policies.act`.
- :mod:`.convert`: writes the project's checkpoint (needs torch).

The ``robot-policy import-lerobot`` subcommand is :mod:`robot_policy_ros.cli.import_lerobot`.
"""
