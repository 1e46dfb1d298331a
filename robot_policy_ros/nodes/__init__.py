"""The thin ROS 2 layer: Node subclasses that wire pure modules to topics and parameters."""
