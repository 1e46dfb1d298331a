"""Policy checkpoints: a directory holding ``config.json`` and ``model.safetensors``.

The package is split by what each part needs to import:

* :mod:`robot_policy_ros.checkpoint.files`: defensive reading of the files inside a
  checkpoint directory (stdlib only): no symlinks, bounded sizes, no pickles, a
  safetensors header checked by our own rules. Defines :class:`CheckpointError`.
* :mod:`robot_policy_ros.checkpoint.config`: the ``config.json`` format and its strict
  validation (``json`` and ``numpy`` only): what the command streamer and the launch files
  read (joint names, limits, cameras, rate) without paying for torch.
* :mod:`robot_policy_ros.checkpoint.weights`: loading and saving the torch weights
  (``load_checkpoint``, ``save_checkpoint``, ``import_weights``); the only part that
  imports torch.

This ``__init__`` deliberately imports nothing, so that ``import
robot_policy_ros.checkpoint.config`` never pulls in torch; import names from the module
that defines them.
"""
