"""OpenCV renderer of the arm and task scene from a fixed pinhole camera.

The static scene (backdrop, table, grid, robot base) is drawn once; every frame copies it
and draws the arm's shadow, the target disc and the arm links in depth order. All
drawing is done by OpenCV primitives with sub-pixel coordinates (no per-pixel Python),
and the output depends only on the state, so rendering is deterministic.
Images are RGB (rgb8).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from robot_policy_ros.sim.arm import ArmConfig, ArmKinematics, CameraView

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_SCALE = 1 << _SHIFT

# Colours (RGB), chosen for contrast at low resolution.
BACKDROP = (62, 70, 84)
FLOOR = (92, 98, 110)
TABLE = (222, 214, 192)
TABLE_EDGE = (160, 150, 128)
GRID = (198, 189, 164)
SHADOW = (150, 143, 126)
TARGET = (225, 25, 30)
TARGET_RIM = (255, 255, 255)
CUE = (40, 210, 60)  # cued_targets: the cued disc and its halo while the cue shows
BASE = (55, 58, 66)
LINK_COLOURS = [(35, 90, 210), (245, 150, 25), (30, 150, 70), (150, 60, 190), (20, 170, 190)]
JOINT = (40, 40, 46)
TIP = (250, 230, 40)

TABLE_X = (-0.30, 0.70)
TABLE_Y = (-0.55, 0.55)
LINK_WIDTH_M = 0.032
BASE_RADIUS_M = 0.06


class PinholeCamera:
    """World -> pixel projection of a fixed camera (square pixels, principal point centred)."""

    def __init__(self, spec: CameraView, width: int, height: int) -> None:
        if width < 8 or height < 8:
            raise ValueError(f"image size {width}x{height} is too small (min 8x8)")
        self.width, self.height = int(width), int(height)
        pos = np.asarray(spec.position, dtype=np.float64)
        fwd = np.asarray(spec.look_at, dtype=np.float64) - pos
        fwd /= np.linalg.norm(fwd)
        # Image "up" follows world +z, or world +x for a camera looking straight down.
        up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.99 else np.array([1.0, 0.0, 0.0])
        right = np.cross(fwd, up)
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        self.position = pos
        self.rotation = np.stack([right, down, fwd])  # rows: camera x, y, z axes in world
        self.focal = (self.width / 2.0) / math.tan(math.radians(spec.fov_deg) / 2.0)
        self.cx, self.cy = self.width / 2.0, self.height / 2.0

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) in camera coordinates (x right, y down, z depth)."""
        return (np.asarray(points, dtype=np.float64) - self.position) @ self.rotation.T

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) and depths (N,) of world points (N, 3)."""
        pc = self.to_camera(points)
        z = np.maximum(pc[:, 2], 1e-6)
        uv = np.empty((len(pc), 2))
        uv[:, 0] = self.cx + self.focal * pc[:, 0] / z
        uv[:, 1] = self.cy + self.focal * pc[:, 1] / z
        return uv, pc[:, 2]


def _fixed(uv: np.ndarray) -> np.ndarray:
    """Pixel coordinates to OpenCV fixed-point int32 (``shift`` bits)."""
    return np.round(np.asarray(uv) * _SCALE).astype(np.int32)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return (int(p[0]), int(p[1]))


def _circle_points(centre: np.ndarray, radius: float, n: int = 40) -> np.ndarray:
    """``n`` points of a horizontal circle in the world."""
    a = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    pts = np.empty((n, 3))
    pts[:, 0] = centre[0] + radius * np.cos(a)
    pts[:, 1] = centre[1] + radius * np.sin(a)
    pts[:, 2] = centre[2]
    return pts


class Renderer:
    """Draws the scene for one camera at a fixed resolution."""

    def __init__(self, config: ArmConfig, camera: CameraView, width: int, height: int) -> None:
        self.config = config
        self.kin = ArmKinematics(config)
        self.camera = PinholeCamera(camera, width, height)
        self.width, self.height = int(width), int(height)
        self.disc_radius = config.workspace.target_disc_radius_m
        # Line widths scale with the image so a downscaled render looks like a resized one.
        self._px = max(self.width / 640.0, 0.1)
        self._background = self._draw_background()

    def _thickness(self, metres: float, depth: float) -> int:
        return max(1, round(self.camera.focal * metres / max(depth, 1e-3)))

    def _poly(self, img: np.ndarray, pts3: np.ndarray, colour, outline=None) -> None:
        uv, depth = self.camera.project(pts3)
        if np.any(depth <= 0.01):
            return
        poly = _fixed(uv)[None]
        cv2.fillPoly(img, poly, colour, cv2.LINE_AA, _SHIFT)
        if outline is not None:
            cv2.polylines(img, poly, True, outline, max(1, round(self._px)), cv2.LINE_AA, _SHIFT)

    def _segment(self, img: np.ndarray, a: np.ndarray, b: np.ndarray, colour, width_m) -> None:
        uv, depth = self.camera.project(np.stack([a, b]))
        if np.any(depth <= 0.01):
            return
        p = _fixed(uv)
        t = self._thickness(width_m, float(depth.mean()))
        cv2.line(img, _pt(p[0]), _pt(p[1]), colour, t, cv2.LINE_AA, _SHIFT)

    def _draw_background(self) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), dtype=np.uint8)
        img[:] = BACKDROP
        # A floor far below the table gives the view a horizon; then the table top.
        far = 5.0
        self._poly(img, np.array([[-far, -far, -0.75], [far, -far, -0.75],
                                  [far, far, -0.75], [-far, far, -0.75]]), FLOOR)  # fmt: skip
        x0, x1 = TABLE_X
        y0, y1 = TABLE_Y
        corners = np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]])
        self._poly(img, corners, TABLE, outline=TABLE_EDGE)
        # Front face of the table so it reads as a solid block.
        self._poly(img, np.array([[x1, y0, 0.0], [x1, y1, 0.0],
                                  [x1, y1, -0.04], [x1, y0, -0.04]]), TABLE_EDGE)  # fmt: skip
        grid_w = max(1, round(self._px))
        for x in np.arange(-0.2, x1 + 1e-9, 0.1):
            uv, _ = self.camera.project(np.array([[x, y0, 0.0], [x, y1, 0.0]]))
            p = _fixed(uv)
            cv2.line(img, _pt(p[0]), _pt(p[1]), GRID, grid_w, cv2.LINE_AA, _SHIFT)
        for y in np.arange(-0.5, y1 + 1e-9, 0.1):
            uv, _ = self.camera.project(np.array([[x0, y, 0.0], [x1, y, 0.0]]))
            p = _fixed(uv)
            cv2.line(img, _pt(p[0]), _pt(p[1]), GRID, grid_w, cv2.LINE_AA, _SHIFT)
        # Robot base: a dark disc on the table.
        self._poly(img, _circle_points(np.zeros(3), BASE_RADIUS_M), BASE)
        return img

    def render(
        self,
        q: np.ndarray,
        target: np.ndarray | None,
        out: np.ndarray | None = None,
        cue: int | None = None,
    ):
        """The image (H, W, 3) uint8 RGB of the arm at joints ``q`` and the target disc(s).

        ``target``: one centre (3,), several (n, 3) (each drawn as an identical disc), or None.

        ``out``: optional preallocated array to draw into (same shape), to avoid allocation.

        ``cue``: index of a disc drawn in the cue colour inside a wide halo of it (the
        halo makes the cue several pixels wide even in a 64x64 policy input).
        """
        if out is None:
            out = self._background.copy()
        else:
            np.copyto(out, self._background)
        pts = self.kin.points(q)
        # Shadow: the arm projected straight down onto the table (helps judge height).
        shadow = pts.copy()
        shadow[:, 2] = 0.0
        for k in range(1, len(shadow) - 1):
            self._segment(out, shadow[k], shadow[k + 1], SHADOW, LINK_WIDTH_M * 0.8)
        for k, centre_xy in enumerate(() if target is None else np.atleast_2d(target)):
            centre = np.array([centre_xy[0], centre_xy[1], 0.0])
            if k == cue:
                self._poly(out, _circle_points(centre, self.disc_radius * 2.2), CUE)
            self._poly(out, _circle_points(centre, self.disc_radius * 1.25), TARGET_RIM)
            self._poly(out, _circle_points(centre, self.disc_radius), CUE if k == cue else TARGET)
        # Arm: column, then links farthest first so nearer links cover farther ones.
        items = [(pts[0], pts[1], BASE, LINK_WIDTH_M * 1.6)]
        for k in range(1, len(pts) - 1):
            colour = LINK_COLOURS[(k - 1) % len(LINK_COLOURS)]
            width = LINK_WIDTH_M * (0.75 if k == len(pts) - 2 else 1.0)
            items.append((pts[k], pts[k + 1], colour, width))
        depths = [
            float(self.camera.to_camera(np.stack([a, b]))[:, 2].mean()) for a, b, _, _ in items
        ]
        for i in np.argsort(depths)[::-1]:
            a, b, colour, width = items[i]
            self._segment(out, a, b, colour, width)
            uv, depth = self.camera.project(a[None])
            r = self._thickness(width * 0.75, float(depth[0]))
            cv2.circle(out, _pt(_fixed(uv)[0]), r * _SCALE, JOINT, -1, cv2.LINE_AA, _SHIFT)
        uv, depth = self.camera.project(pts[-1][None])
        r = self._thickness(LINK_WIDTH_M * 0.45, float(depth[0]))
        cv2.circle(out, _pt(_fixed(uv)[0]), r * _SCALE, TIP, -1, cv2.LINE_AA, _SHIFT)
        return out
