"""Demonstration data: rosbag2 recording and reading, alignment, datasets, statistics.

Modules (pure Python, no rclpy): ``bag_writer`` (threaded rosbag2 writer, recovery),
``bag_reader`` (episodes from bags), ``alignment`` (frames/states/actions), ``dataset``
(torch Dataset with a decoded-frame cache), ``stats`` (normalization, joint limits),
``synthetic`` (bags with known timing). See doc/data.md.
"""
