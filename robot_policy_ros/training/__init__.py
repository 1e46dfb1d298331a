"""Training behind ``robot-policy train``: ``trainer`` (the loop), ``train_cli`` (options),
``ddp`` (torchrun / DistributedDataParallel helpers). See doc/data.md."""
