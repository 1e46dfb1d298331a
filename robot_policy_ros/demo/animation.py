"""A short animation of evaluation episodes: the sim camera beside the commanded and
measured joints, read back from the evaluation bags (``eval_episodes.gif``).

Each frame shows the camera image as the policy saw it (upscaled) and, per joint, the last
few seconds of the commanded (orange) and measured (blue) positions, with the episode's
outcome. Drawn with Pillow only (no matplotlib per frame), so a few hundred frames take
seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy_ros.data.bag_reader import decode_image, iter_messages, read_episode_metadata

COMMANDED = (230, 120, 20)
MEASURED = (40, 110, 200)


def _episode_series(bag: Path, camera_topic: str, joints_topic: str, commands_topic: str):
    frames: list[tuple[float, np.ndarray]] = []
    states: list[tuple[float, np.ndarray]] = []
    commands: list[tuple[float, np.ndarray]] = []
    names: list[str] = []
    topics = [camera_topic, joints_topic, commands_topic]
    for topic, msgtype, log_ns, msg in iter_messages(bag, topics):
        t = log_ns * 1e-9
        if topic == camera_topic:
            frames.append((t, decode_image(msg, msgtype)))
        elif topic == joints_topic:
            names = names or list(msg.name)
            states.append((t, np.asarray(msg.position, dtype=np.float64)))
        else:
            commands.append((t, np.asarray(msg.data, dtype=np.float64)))
    return frames, states, commands, names


def _trace(draw: Any, box: tuple[int, int, int, int], series, t_now: float, window: float,
           lo: float, hi: float, color: tuple[int, int, int]) -> None:  # fmt: skip
    x0, y0, x1, y1 = box
    pts = []
    for t, v in series:
        if t_now - window <= t <= t_now:
            x = x0 + (x1 - x0) * (t - (t_now - window)) / window
            y = y1 - (y1 - y0) * (v - lo) / max(hi - lo, 1e-9)
            pts.append((x, min(max(y, y0), y1)))
    if len(pts) > 1:
        draw.line(pts, fill=color, width=2)


def write_animation(
    bags: Sequence[Path],
    out_path: Path,
    camera_topic: str,
    joints_topic: str,
    commands_topic: str,
    *,
    fps: float = 10.0,
    scale: int = 2,
    window_s: float = 3.0,
    max_frames: int = 400,
) -> int:
    """Write a GIF of the given evaluation bags, in order; returns the frames written (0 when
    the bags hold no camera frames, and then nothing is written)."""
    from PIL import Image, ImageDraw

    images: list[Any] = []
    for bag in bags:
        frames, states, commands, names = _episode_series(
            bag, camera_topic, joints_topic, commands_topic
        )
        if not frames or not states:
            continue
        meta = read_episode_metadata(bag)
        outcome = "success" if meta.get("success") else "no success"
        n = len(states[0][1])
        q = np.array([s[1][:n] for s in states if len(s[1]) >= n])
        lo, hi = q.min(axis=0) - 0.1, q.max(axis=0) + 0.1
        h, w = frames[0][1].shape[:2]
        cam_w, cam_h = w * scale, h * scale
        row_h = max(28, cam_h // max(n, 1))
        panel_w = 260
        next_t = frames[0][0]
        for t, img in frames:
            if t < next_t:
                continue
            next_t = t + 1.0 / fps
            canvas = Image.new("RGB", (cam_w + panel_w, max(cam_h, row_h * n) + 18), "white")
            canvas.paste(Image.fromarray(img).resize((cam_w, cam_h), Image.NEAREST), (0, 0))
            draw = ImageDraw.Draw(canvas)
            for j in range(n):
                box = (cam_w + 60, j * row_h + 3, cam_w + panel_w - 4, (j + 1) * row_h - 3)
                draw.rectangle(box, outline=(200, 200, 200))
                label = names[j] if j < len(names) else f"joint {j}"
                draw.text((cam_w + 2, j * row_h + row_h // 2 - 6), label[:9], fill="black")
                s_j = [(ts, v[j]) for ts, v in states if len(v) > j]
                c_j = [(tc, v[j]) for tc, v in commands if len(v) > j]
                _trace(draw, box, c_j, t, window_s, lo[j], hi[j], COMMANDED)
                _trace(draw, box, s_j, t, window_s, lo[j], hi[j], MEASURED)
            draw.text(
                (4, canvas.height - 16),
                f"episode {meta.get('index', '?')}: {outcome}   orange: commanded, blue: measured",
                fill="black",
            )
            images.append(canvas.convert("P", palette=Image.ADAPTIVE))
            if len(images) >= max_frames:
                break
        if len(images) >= max_frames:
            break
    if not images:
        return 0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        out_path,
        save_all=True,
        append_images=images[1:],
        duration=int(1000 / fps),
        loop=0,
        optimize=True,
    )
    return len(images)
