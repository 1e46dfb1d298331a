"""robot_policy_ros: camera-to-motor learned policies for ROS 2 Jazzy.

Layout:
    core/      pure control pieces (chunk buffer, safety filter, timing, images); no rclpy
    policies/  MLP, ACT and Diffusion Policy models in pure PyTorch
    sim/       the embedded simulated arm, camera renderer, task and scripted expert; no rclpy
    data/      rosbag2 writing and bag-to-dataset alignment; no rclpy
    training/  the trainer behind ``robot-policy train``
    nodes/     the thin ROS 2 layer wiring the pieces above to topics and parameters
"""

__version__ = "0.1.0"
