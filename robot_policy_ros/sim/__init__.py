"""The embedded simulated robot, without ROS.

- :mod:`.arm`: arm YAML (joints, limits, links, cameras), forward kinematics, joint servos.
- :mod:`.commands`: position / joint-trajectory command validation and following.
- :mod:`.task`: seeded episodes (target per (seed, index)) and geometric success.
- :mod:`.world`: arm + commands + task stepped at a fixed physics rate.
- :mod:`.render`: OpenCV renderer of the scene from a fixed camera.
- :mod:`.expert`: inverse kinematics and minimum-jerk planning for the scripted expert.
"""
