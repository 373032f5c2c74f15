"""Signs as trajectories over the 77 points (Sec. 6.1) and the crops a camera would see (Sec. 6.2).

A sign is a set of phonological parameters: dominant hand shape (finger curls and spread, with
an optional change), location, movement path, orientation (finger direction and palm yaw), the
non-dominant hand's role (rest / mirror / base), and non-manuals: mouth pattern (lip opening
and width), brows, head movement, and a facial cue only the face crop shows (eyes squinted or
wide, cheeks puffed, tongue, teeth). A video is a per-frame state
vector (`STATE` below) built sign by sign, joined by interpolated transitions and smoothed
(co-articulation), then turned into pixel keypoints for one signer (body size, framing,
handedness: left-handers mirror the manual channel). The *observed* keypoints add an
estimator's jitter and MediaPipe-like missing-hand bursts; the crops are drawn from the clean
scene, inside boxes taken from the observed keypoints (what a detector + DINOv2 would get).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# --- per-frame state layout -----------------------------------------------------------------
HAND_KEYS = ("x", "y", "angle", "yaw", "c_thumb", "c_index", "c_middle", "c_ring", "c_pinky", "spread")
FACE_KEYS = ("aperture", "width", "brow", "roll", "nod", "shake", "eye", "puff", "tongue", "teeth")
DOM, ND, FACE = slice(0, 10), slice(10, 20), slice(20, 30)
STATE = 30

# Hand shapes: curls (thumb, index, middle, ring, pinky) in [0, 1] and spread.
HANDSHAPES: dict[str, tuple[tuple[float, ...], float]] = {
    "A": ((0.1, 1, 1, 1, 1), 0), "S": ((0.9, 1, 1, 1, 1), 0), "B": ((0.8, 0, 0, 0, 0), 0),
    "5": ((0, 0, 0, 0, 0), 1), "1": ((0.9, 0, 1, 1, 1), 0), "V": ((0.9, 0, 0, 1, 1), 1),
    "H": ((0.9, 0, 0, 1, 1), 0), "W": ((0.9, 0, 0, 0, 1), 1), "4": ((0.9, 0, 0, 0, 0), 1),
    "3": ((0, 0, 0, 1, 1), 1), "Y": ((0, 1, 1, 1, 0), 1), "L": ((0, 0, 1, 1, 1), 1),
    "I": ((0.9, 1, 1, 1, 0), 0), "C": ((0.3, 0.45, 0.45, 0.45, 0.45), 0), "O": ((0.6, 0.7, 0.7, 0.7, 0.7), 0),
    "claw": ((0.3, 0.5, 0.5, 0.5, 0.5), 1), "X": ((0.9, 0.6, 1, 1, 1), 0), "F": ((0.6, 0.75, 0, 0, 0), 1),
    "K": ((0.3, 0, 0.4, 1, 1), 1), "bent": ((0.8, 0.35, 0.35, 0.35, 0.35), 0),
}
# Locations of the dominant hand's centre, signer units (shoulder half-width), origin at the
# neck, x towards the image right for a right-handed signer (whose dominant hand is at x < 0).
LOCATIONS: dict[str, tuple[float, float]] = {
    "neutral": (-0.35, 1.1), "chest": (0.0, 0.7), "chest_dom": (-0.55, 0.55), "chin": (-0.1, -0.55),
    "mouth": (-0.05, -0.85), "nose": (0.0, -1.15), "eyes": (-0.3, -1.4), "forehead": (0.0, -1.75),
    "cheek": (-0.45, -1.0), "temple": (-0.6, -1.5), "shoulder_nd": (0.75, 0.2), "side_high": (-1.3, -0.6),
    "low": (-0.45, 1.7), "nd_palm": (0.1, 0.85),
}
MOVEMENTS = ("hold", "down", "up", "out", "in", "circle", "shake", "arc", "twist", "tap", "zigzag", "forward")
ORIENTATIONS = (0.0, 0.6, 1.4, -0.4, 2.7)       # finger direction, radians from "up" towards the midline
YAWS = (0.0, 1.2, 2.8, 0.7)                     # palm: to the camera, side on, back, angled
ND_ROLES = ("rest", "mirror", "base")
# Mouth patterns, seen in the mouth points: (aperture, width, syllables); the aperture
# oscillates `syllables` times when > 0.
MOUTHS: dict[str, tuple[float, float, int]] = {
    "closed": (0.05, 1.0, 0), "open": (0.6, 1.0, 0), "ma": (0.5, 1.0, 2), "papapa": (0.4, 0.95, 3),
    "oo": (0.35, 0.6, 0), "ee": (0.15, 1.3, 0), "sh": (0.25, 0.75, 0), "mm": (0.0, 1.05, 0),
}
# Facial cues seen only in the face crop, not in the 77 points: (eye openness, puff, tongue, teeth).
CUES: dict[str, tuple[float, float, float, float]] = {
    "none": (0, 0, 0, 0), "squint": (-1, 0, 0, 0), "wide": (1, 0, 0, 0), "puff": (0, 1, 0, 0),
    "tongue": (0, 0, 1, 0), "teeth": (0, 0, 0, 1),
}
REST = {"dom": (-0.95, 2.6), "nd": (0.95, 2.6)}
FRAME = (512, 512)


@dataclass(frozen=True)
class SignSpec:
    """The phonological parameters of one sign."""

    handshape: str
    end_handshape: str | None
    location: str
    movement: str
    orientation: float
    yaw: float
    nd_role: str
    mouth: str
    brow: float          # -1 furrowed, 0, 1 raised
    cue: str             # a key of CUES
    head: str            # none | tilt | nod | shake

    def manual(self) -> tuple:
        return (self.handshape, self.end_handshape, self.location, self.movement, self.orientation, self.yaw,
                self.nd_role)

    def nonmanual(self) -> tuple:
        return (self.mouth, self.brow, self.cue, self.head)


def make_lexicon(glosses: list[str], face_pairs: list[tuple[str, ...]], hand_groups: list[tuple[str, ...]],
                 rng: np.random.Generator) -> dict[str, SignSpec]:
    """A distinct sign for every gloss. Members of a `face_pairs` group share every manual
    parameter, the brows and the head movement; members of a `hand_groups` group share
    everything but the hand shape. Face pairs alternate between mouthing pairs (different mouth patterns: mouth points and crops differ) and expression
    pairs (different crop-only cues: the 77 points are identical, only the face crop differs)."""
    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    def manual(handshape=None):
        loc = pick(list(LOCATIONS))
        nd = "base" if loc == "nd_palm" else pick(["rest", "rest", "mirror", "base"])
        if nd == "mirror" and loc in ("shoulder_nd", "nd_palm"):
            nd = "rest"
        end = pick(list(HANDSHAPES)) if rng.random() < 0.15 else None
        return dict(handshape=handshape or pick(list(HANDSHAPES)), end_handshape=end, location=loc,
                    movement=pick(MOVEMENTS), orientation=pick(ORIENTATIONS), yaw=pick(YAWS), nd_role=nd)

    def nonmanual():
        return dict(mouth=pick(list(MOUTHS)), brow=float(pick([0, 0, 0, 1, -1])),
                    cue="none" if rng.random() < 0.5 else pick(list(CUES)),
                    head=pick(["none", "none", "none", "tilt", "nod", "shake"]))

    lex: dict[str, SignSpec] = {}
    used: set[tuple] = set()

    def fresh_manual(handshape=None):
        while True:
            m = manual(handshape)
            key = tuple(m.values())
            if key not in used and (m["handshape"], m["end_handshape"]) != (m["end_handshape"], m["handshape"]):
                used.add(key)
                return m

    for group in hand_groups:
        base = fresh_manual()
        base["end_handshape"] = None
        shapes, face = rng.permutation(list(HANDSHAPES))[: len(group)], nonmanual()
        for g, hs in zip(group, shapes):
            m = dict(base, handshape=str(hs))
            used.add(tuple(m.values()))
            lex[g] = SignSpec(**m, **face)
    for i, group in enumerate(face_pairs):
        m, face = fresh_manual(), nonmanual()
        if i % 2 == 0:  # mouthing pairs: the mouth points differ
            for g, mouth in zip(group, rng.permutation(list(MOUTHS))):
                lex[g] = SignSpec(**m, **dict(face, mouth=str(mouth)))
        else:           # expression pairs: identical points, only the face crop differs
            for g, cue in zip(group, rng.permutation(list(CUES))):
                lex[g] = SignSpec(**m, **dict(face, cue=str(cue)))
    for g in glosses:
        if g not in lex:
            lex[g] = SignSpec(**fresh_manual(), **nonmanual())
    return lex


# --- sign -> state trajectory ---------------------------------------------------------------
def _hand_state(x, y, angle, yaw, shape: str, n: int) -> np.ndarray:
    curls, spread = HANDSHAPES[shape]
    out = np.empty((n, 10))
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = x, y, angle, yaw
    out[:, 4:9], out[:, 9] = curls, spread
    return out


def _path(movement: str, s: np.ndarray, amp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (dx, dy, d_angle) of a movement at phases s in [0, 1]."""
    z = np.zeros_like(s)
    tw = 2 * np.pi * s
    paths = {
        "hold": (z, 0.04 * np.sin(2 * tw), z),
        "down": (z, 0.45 * (s - 0.5), z), "up": (z, -0.45 * (s - 0.5), z),
        "out": (-0.5 * (s - 0.5), z, z), "in": (0.5 * (s - 0.5), z, z),
        "circle": (0.22 * np.cos(tw), 0.22 * np.sin(tw), z),
        "shake": (0.14 * np.sin(1.5 * tw), z, z),
        "arc": (0.5 * (s - 0.5), -0.3 * np.sin(np.pi * s), z),
        "twist": (z, z, 0.8 * np.sin(tw / 2) - 0.4),
        "tap": (z, 0.12 * np.abs(np.sin(tw)), z),
        "zigzag": (0.15 * np.sign(np.sin(1.5 * tw)) * np.abs(np.sin(1.5 * tw)) ** 0.5, 0.4 * (s - 0.5), z),
        "forward": (0.1 * (s - 0.5), 0.15 * (s - 0.5), 0.3 * s),
    }
    dx, dy, da = paths[movement]
    return amp * dx, amp * dy, da


def sign_states(spec: SignSpec, n: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """`[n, STATE]` for one sign performed over n frames (right-handed signer space)."""
    s = np.linspace(0.0, 1.0, n)
    lx, ly = LOCATIONS[spec.location]
    lx, ly = lx + jitter * rng.normal(0, 0.08), ly + jitter * rng.normal(0, 0.08)
    dx, dy, da = _path(spec.movement, s, 1.0 + jitter * rng.normal(0, 0.15))
    out = np.zeros((n, STATE))
    out[:, DOM] = _hand_state(lx + dx, ly + dy, spec.orientation + da, spec.yaw, spec.handshape, n)
    if spec.end_handshape:
        w = np.clip((s - 0.3) / 0.5, 0, 1)[:, None]
        out[:, 4:10] = (1 - w) * out[:, 4:10] + w * _hand_state(0, 0, 0, 0, spec.end_handshape, n)[:, 4:10]
    if spec.nd_role == "mirror":
        out[:, ND] = out[:, DOM]
        out[:, 10] *= -1
        out[:, 12] *= -1
    elif spec.nd_role == "base":
        out[:, ND] = _hand_state(0.35, 1.05, -1.45, 1.3, "B", n)
    else:
        out[:, ND] = _hand_state(*REST["nd"], 0.2, 0.6, "bent", n)
    ap, width, syll = MOUTHS[spec.mouth]
    eye, puff, tongue, teeth = CUES[spec.cue]
    aperture = ap * np.abs(np.sin(np.pi * syll * s)) if syll else np.full(n, ap)
    head = {"none": (z := np.zeros(n), z, z), "tilt": (0.15 * np.sin(np.pi * s), z, z),
            "nod": (z, np.sin(2 * np.pi * s), z), "shake": (z, z, np.sin(3 * np.pi * s))}[spec.head]
    out[:, FACE] = np.stack([aperture, np.full(n, width), np.full(n, spec.brow), *head, np.full(n, eye),
                             np.full(n, puff), np.full(n, tongue), np.full(n, teeth)], 1)
    return out


def rest_states(n: int) -> np.ndarray:
    out = np.zeros((n, STATE))
    out[:, DOM] = _hand_state(*REST["dom"], -0.2, 0.6, "bent", n)
    out[:, ND] = _hand_state(*REST["nd"], 0.2, 0.6, "bent", n)
    out[:, FACE] = [0.05, 1.0, 0, 0, 0, 0, 0, 0, 0, 0]
    return out


def sentence_states(specs: list[SignSpec], frames: list[int], transition: int, coarticulation: float,
                    rng: np.random.Generator, jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """States `[T, STATE]` of a sentence (rest, signs joined by eased transitions, rest), and
    the sign index of every frame (-1 for rest and transitions). `coarticulation` is the
    width (frames) of a Gaussian smoothing that blends neighbouring signs."""
    pieces, labels = [rest_states(2)], [np.full(2, -1)]
    for i, (spec, n) in enumerate(zip(specs, frames)):
        cur = sign_states(spec, n, rng, jitter)
        prev = pieces[-1][-1]
        k = transition + (2 if i == 0 else 0)
        w = (0.5 - 0.5 * np.cos(np.pi * np.arange(1, k + 1) / (k + 1)))[:, None]
        pieces += [(1 - w) * prev + w * cur[0], cur]
        labels += [np.full(k, -1), np.full(n, i)]
    w = (0.5 - 0.5 * np.cos(np.pi * np.arange(1, transition + 3) / (transition + 3)))[:, None]
    end = rest_states(1)[0]
    pieces += [(1 - w) * pieces[-1][-1] + w * end, rest_states(1)]
    labels += [np.full(transition + 2, -1), np.full(1, -1)]
    states = np.concatenate(pieces)
    if coarticulation > 0:
        r = int(np.ceil(2 * coarticulation))
        kern = np.exp(-0.5 * (np.arange(-r, r + 1) / coarticulation) ** 2)
        kern /= kern.sum()
        padded = np.pad(states, ((r, r), (0, 0)), mode="edge")
        states = np.stack([np.convolve(padded[:, j], kern, mode="valid") for j in range(STATE)], 1)
    return states, np.concatenate(labels)


# --- signer and state -> keypoints ----------------------------------------------------------
@dataclass(frozen=True)
class Signer:
    """Body proportions, speed, handedness and looks of one signer."""

    unit: float          # shoulder half-width in pixels
    head: float          # head half-width / unit
    palm: float          # palm length / unit
    arm: float           # arm length / unit
    speed: float         # > 1 signs faster (fewer frames)
    left_handed: bool
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    cloth: tuple[int, int, int]
    background: tuple[int, int, int]


SKINS = [(233, 196, 170), (214, 170, 134), (182, 134, 98), (141, 94, 64), (98, 64, 44), (245, 212, 190)]


def make_signer(rng: np.random.Generator, left_handed: bool, speed_range: tuple[float, float]) -> Signer:
    def colour(lo, hi):
        return tuple(int(v) for v in rng.integers(lo, hi, 3))

    return Signer(unit=float(rng.uniform(60, 78)), head=float(rng.uniform(0.45, 0.56)),
                  palm=float(rng.uniform(0.5, 0.62)), arm=float(rng.uniform(2.6, 3.0)),
                  speed=float(rng.uniform(*speed_range)), left_handed=left_handed,
                  skin=SKINS[int(rng.integers(len(SKINS)))], hair=colour(10, 110), cloth=colour(20, 200),
                  background=colour(60, 230))


def _rot(v: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Rotate 2-vectors `[..., 2]` by angles `a` (broadcast over the leading axes)."""
    c, s = np.cos(a), np.sin(a)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], -1)


_MCP = np.array([[0.38, 0.95], [0.12, 1.0], [-0.12, 0.95], [-0.34, 0.85]])
_SEG = np.array([[0.45, 0.27, 0.2], [0.5, 0.3, 0.2], [0.46, 0.28, 0.2], [0.36, 0.22, 0.18]])
_SPREAD = np.array([0.22, 0.0, -0.16, -0.32])
_FLEX = np.array([1.3, 1.7, 1.1])


def hand_points(h: np.ndarray, wrist: np.ndarray, side: float, palm: float) -> np.ndarray:
    """The 21 hand points `[T,21,2]` from hand states `[T,10]` and wrist pixels `[T,2]`.

    A 3-D hand (lateral towards the thumb, up the fingers, depth out of the palm) with
    flexed finger joints, yawed about its up axis and projected orthographically. `side` is
    +1 for the signer's right hand, -1 for the left (mirror)."""
    T = len(h)
    angle, yaw, curls, spread = h[:, 2], h[:, 3], h[:, 4:9], h[:, 9]
    pts = np.zeros((T, 21, 3))                                        # lateral, up, depth
    # thumb: CMC then three segments swinging across the palm as it curls
    a = 1.0 - 1.3 * curls[:, 0]
    d = np.stack([np.sin(a), np.cos(a), np.zeros(T)], 1)
    pts[:, 1] = [0.25, 0.2, 0.0]
    for j, (ln, fl) in enumerate(zip((0.35, 0.3, 0.25), (0.3, 0.6, 0.9))):
        phi = fl * curls[:, 0]
        step = ln * np.stack([d[:, 0] * np.cos(phi), d[:, 1] * np.cos(phi), -np.sin(phi)], 1)
        pts[:, 2 + j] = pts[:, 1 + j] + step
    # fingers: MCP, PIP, DIP, TIP with cumulative flexion
    for f in range(4):
        a = _SPREAD[f] * spread + 0.04 * (1.5 - f)
        base = 5 + 4 * f
        pts[:, base, :2] = _MCP[f]
        phi = np.zeros(T)
        for j in range(3):
            phi = phi + _FLEX[j] * curls[:, 1 + f]
            step = _SEG[f, j] * np.stack([np.sin(a) * np.cos(phi), np.cos(a) * np.cos(phi), -np.sin(phi)], 1)
            pts[:, base + j + 1] = pts[:, base + j] + step
    lateral = pts[..., 0] * np.cos(yaw)[:, None] + pts[..., 2] * np.sin(yaw)[:, None]
    u = np.stack([np.sin(angle), -np.cos(angle)], 1)[:, None]        # up the fingers, image coords
    v = np.stack([np.cos(angle), np.sin(angle)], 1)[:, None]
    return wrist[:, None] + palm * (pts[..., 1, None] * u + side * lateral[..., None] * v)


@dataclass
class Scene:
    """Clean keypoints and what the renderer needs beyond them."""

    points: np.ndarray       # [T,77,2] pixels, noise-free
    face: np.ndarray         # [T, len(FACE_KEYS)] face state
    extra: np.ndarray        # [T,6,2]: eye centres (right, left), cheeks (right, left), head centre, neck
    head_size: float         # head half-width in pixels


def scene_points(states: np.ndarray, signer: Signer, neck: np.ndarray, unit: float) -> Scene:
    """Per-frame states -> pixel keypoints of the whole signer (Sec. 6.1 layout)."""
    T = len(states)
    m = -1.0 if signer.left_handed else 1.0
    pts = np.zeros((T, 77, 2))
    # body: nose, ears, shoulders (left = signer's left = image right), elbows, wrists
    f = states[:, FACE]
    hw = signer.head * unit
    head_c = neck + np.array([0.0, -1.2 * unit]) + np.stack([0.15 * hw * f[:, 5], 0.1 * hw * f[:, 4]], 1)
    roll = f[:, 3]
    shoulders = {+1: neck + [unit, 0.0], -1: neck + [-unit, 0.0]}                # +1 = image right
    hands = {}
    for key, sl in (("dom", DOM), ("nd", ND)):
        h = states[:, sl].copy()
        h[:, 0] *= m
        h[:, 2] *= m
        image_side = -m if key == "dom" else m                      # where this hand sits at rest
        body_side = -1.0 if image_side < 0 else 1.0                 # signer's right = image left
        side = 1.0 if image_side < 0 else -1.0                      # +1 right hand, -1 left hand
        centre = neck + unit * h[:, :2]
        up = np.stack([np.sin(h[:, 2]), -np.cos(h[:, 2])], 1)
        wrist = centre - 0.55 * signer.palm * unit * up
        hands[body_side] = (hand_points(h, wrist, side, signer.palm * unit), wrist)
    for body_side, (hp, wrist) in hands.items():
        sh = np.broadcast_to(shoulders[body_side], (T, 2))
        half = 0.5 * signer.arm * unit                               # upper arm = forearm
        vec = wrist - sh
        dist = np.maximum(np.linalg.norm(vec, axis=1), 1e-6)
        normal = np.stack([-vec[:, 1], vec[:, 0]], 1) / dist[:, None]
        normal *= np.where(normal[:, 1] + 0.5 * body_side * normal[:, 0] >= 0, 1.0, -1.0)[:, None]
        bend = 0.6 * np.sqrt(np.maximum(half ** 2 - (dist / 2) ** 2, 0))   # 0.6: foreshortened depth
        elbow = (sh + wrist) / 2 + bend[:, None] * normal             # hangs low and out
        i_sh, i_el, i_wr, hand_sl = (3, 5, 7, slice(9, 30)) if body_side > 0 else (4, 6, 8, slice(30, 51))
        pts[:, i_sh], pts[:, i_el], pts[:, i_wr], pts[:, hand_sl] = sh, elbow, wrist, hp
    # face, in head-local units of hw (x image right, y down), nose tip at the origin
    t = np.pi - np.arange(9) * np.pi / 8
    jaw = np.stack([0.95 * np.cos(t), -0.35 + 1.45 * np.sin(t)], 1)
    brow = np.array([[-0.75, -0.72], [-0.45, -0.85], [-0.15, -0.75], [0.15, -0.75], [0.45, -0.85], [0.75, -0.72]])
    b = f[:, 2][:, None]
    brows = np.broadcast_to(brow, (T, 6, 2)).copy()
    brows[..., 1] -= 0.16 * np.maximum(b, 0)                               # raised
    inner = np.array([0.3, 0.7, 1.0, 1.0, 0.7, 0.3])
    brows[..., 1] += 0.1 * np.maximum(-b, 0) * inner                       # furrowed: inner ends drop
    brows[..., 0] *= 1 - 0.08 * np.maximum(-b, 0) * inner
    eyes = np.broadcast_to([[-0.62, -0.45], [0.62, -0.45]], (T, 2, 2))
    mw = (0.32 * f[:, 1])[:, None]
    mh = (0.02 + 0.22 * f[:, 0])[:, None]
    mx = np.array([-1, -0.5, 0, 0.5, 1, 0.5, 0, -0.5])
    my = np.array([0, -0.8, -1, -0.8, 0, 0.8, 1, 0.8])
    mouth = np.stack([mx * mw, 0.5 + my * mh], -1)
    shift = np.stack([0.12 * f[:, 5], 0.1 * f[:, 4]], 1)[:, None]           # shake / nod move the features
    face = np.concatenate([np.broadcast_to(jaw, (T, 9, 2)), brows + shift, eyes + shift, shift], 1)
    extras = np.concatenate([np.broadcast_to([[-0.4, -0.45], [0.4, -0.45], [-0.55, 0.4], [0.55, 0.4], [0, -0.3]],
                                             (T, 5, 2)) + shift], 1)
    local = np.concatenate([mouth + shift, face, extras], 1)                # [T, 8+18+5, 2]
    world = head_c[:, None] + hw * _rot(local, roll[:, None])
    pts[:, 51:77] = world[:, :26]
    pts[:, 0] = world[:, 25]                                               # body nose = nose tip
    ear = _rot(np.array([[-1.02, -0.3], [1.02, -0.3]])[None].repeat(T, 0), roll[:, None])
    pts[:, 2], pts[:, 1] = head_c + hw * ear[:, 0], head_c + hw * ear[:, 1]   # right ear image-left
    extra = np.concatenate([world[:, 26:], np.broadcast_to(neck, (T, 1, 2))], 1)
    return Scene(points=pts, face=f, extra=extra, head_size=hw)


# --- estimator: jitter and missing hands ----------------------------------------------------
def observe(scene: Scene, rng: np.random.Generator, noise: float, missing_rate: float,
            face_missing_rate: float) -> np.ndarray:
    """Observed `float32 [T,77,3]`: clean points + jitter (pixels, scaled by `noise`), missing
    hand bursts (a two-state Markov chain per hand, mean burst 4 frames, stationary rate
    `missing_rate`; more likely for a fast-moving or low hand), rare face drop-outs;
    missing = zeros with confidence 0."""
    pts = scene.points
    T = len(pts)
    sigma = np.zeros(77)
    sigma[0:9], sigma[9:51], sigma[51:59], sigma[59:77] = 2.0, 2.5, 0.9, 1.3
    xy = pts + rng.normal(0, 1, pts.shape) * (noise * sigma)[None, :, None]
    xy += rng.normal(0, noise * 1.5, (T, 1, 2))                             # whole-frame jitter
    conf = np.concatenate([rng.uniform(0.75, 1.0, (T, 9)), rng.uniform(0.55, 1.0, (T, 42)),
                           rng.uniform(0.8, 1.0, (T, 26))], 1)
    for sl in (slice(9, 30), slice(30, 51)):
        hand = pts[:, sl]
        speed = np.r_[0, np.linalg.norm(np.diff(hand[:, 0], axis=0), axis=1)] / scene.head_size
        low = np.clip((hand[:, 0, 1] - 0.82 * FRAME[1]) / (0.1 * FRAME[1]), 0, 1)
        # per-frame risk, mean `missing_rate`, higher when fast or low; bursts: P(stay missing) = 0.75
        weight = 0.5 + np.clip(speed, 0, 1) + 1.5 * low
        risk = np.clip(missing_rate * weight / weight.mean(), 0, 0.95)
        p_start = np.clip(risk * 0.25 / np.maximum(1 - risk, 1e-3), 0, 1)
        miss = np.zeros(T, dtype=bool)
        draws = rng.random(T)
        for t in range(T):
            miss[t] = draws[t] < (0.75 if t and miss[t - 1] else p_start[t])
        conf[miss, sl] = 0.0
    drop = rng.random(T) < face_missing_rate
    conf[drop, 51:77] = 0.0
    out = np.concatenate([xy, conf[..., None]], -1).astype(np.float32)
    out[out[..., 2] == 0] = 0.0
    return out


# --- crops ----------------------------------------------------------------------------------
_SHIFT = 4


def _darker(c, k=0.6):
    return tuple(int(min(255, v * k)) for v in c)


_FINGERS = [[0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20], [5, 9, 13, 17]]


def draw_crops(scene: Scene, frames: np.ndarray, boxes: np.ndarray, signer: Signer, bg: tuple[int, int, int],
               size: int) -> np.ndarray:
    """The clean scene of each frame in `frames` seen through its box (x0, y0, x1, y1) ->
    `uint8 [N,size,size,3]` RGB, drawn directly at `size` pixels with cv2 (fixed point, 4
    fractional bits). Face, brows, eye openness, cheeks, teeth and tongue, arms and hands."""
    one = 1 << _SHIFT
    boxes = np.asarray(boxes, dtype=np.float64)
    k = size / np.maximum((boxes[:, 2:] - boxes[:, :2]).max(1), 1.0)                 # [N]
    to_crop = lambda pts: (pts[frames] - boxes[:, None, :2]) * k[:, None, None]      # noqa: E731
    P, E = to_crop(scene.points), to_crop(scene.extra)
    hw = scene.head_size * k                                                         # [N]
    F = scene.face[frames]
    roll = np.degrees(F[:, 3])
    up = lambda a: np.stack([np.zeros_like(hw), a * hw], 1)[:, None]                 # noqa: E731
    side = lambda a: np.stack([a * hw, np.zeros_like(hw)], 1)[:, None]               # noqa: E731
    torso = np.concatenate([P[:, [3]] + side(0.3), P[:, [4]] - side(0.3), P[:, [4]] + side(-0.2) + up(8),
                            P[:, [3]] + side(0.2) + up(8)], 1)
    extra = np.concatenate([E[:, [4]] + up(0.25), E[:, [4]] + up(0.37), (E[:, [0]] + E[:, [1]]) / 2,
                            P[:, [57]] + up(0.2)], 1)                                # head cap, face, brow mid, tongue
    teeth = np.concatenate([P[:, 51:56] + up(-0.06), P[:, 55:50:-1] + up(0.2)], 1)
    Pi, Ei, Ti, Xi, Di = (np.round(a * one).astype(np.int32) for a in (P, E, torso, extra, teeth))
    R = np.maximum(np.round(hw[:, None] * one * np.array([1.0, 1.4, 0.95, 1.3, 0.18, 0.2, 0.08, 0.28, 0.3,
                                                           0.06, 0.32])), 1).astype(np.int64)
    eye_h = np.maximum(np.round((0.11 + 0.09 * F[:, 6]) * hw * one), 1).astype(np.int64)
    puff_r = np.maximum(np.round(0.42 * F[:, 7] * hw * one), 1).astype(np.int64)
    lw = np.maximum((0.09 * hw).astype(int), 1)
    arm_w, neck_w, finger_w = np.maximum((0.55 * hw).astype(int), 2), np.maximum((0.6 * hw).astype(int), 1), \
        np.maximum((0.16 * hw).astype(int), 1)
    skin, dark, hair, cloth = signer.skin, _darker(signer.skin), signer.hair, signer.cloth
    puff = (min(255, skin[0] + 40), int(skin[1] * 0.75), int(skin[2] * 0.75))       # round, flushed cheeks
    rows = lambda idx: np.ascontiguousarray(Pi[:, idx])                              # noqa: E731
    chains = {hs: [rows(hs + np.array(ch)) for ch in _FINGERS] for hs in (9, 30)}
    palms = {hs: rows(hs + np.array([0, 1, 5, 9, 13, 17])) for hs in (9, 30)}
    tips = {hs: rows(hs + np.array([4, 8, 12, 16, 20]))[:, :, None] for hs in (9, 30)}
    arms = [rows([3, 5, 7]), rows([4, 6, 8])]
    L8 = cv2.LINE_8
    out = np.empty((len(frames), size, size, 3), np.uint8)
    out[:] = bg
    for n in range(len(frames)):
        img, p, e, x, r = out[n], Pi[n], Ei[n].tolist(), Xi[n].tolist(), R[n].tolist()
        pl = p.tolist()
        cv2.fillConvexPoly(img, Ti[n], cloth, L8, _SHIFT)
        cv2.line(img, e[5], e[4], skin, int(neck_w[n]), L8, _SHIFT)
        cv2.ellipse(img, x[0], (r[0], r[1]), roll[n], 180, 360, hair, -1, L8, _SHIFT)
        cv2.ellipse(img, x[1], (r[2], r[3]), roll[n], 0, 360, skin, -1, L8, _SHIFT)
        cv2.circle(img, pl[1], r[4], skin, -1, L8, _SHIFT)
        cv2.circle(img, pl[2], r[4], skin, -1, L8, _SHIFT)
        if F[n, 7] > 0.3:                                   # puffed cheeks
            for cheek in (e[2], e[3]):
                cv2.circle(img, cheek, int(puff_r[n]), puff, -1, L8, _SHIFT)
                cv2.circle(img, cheek, int(puff_r[n]), dark, 1, L8, _SHIFT)
        cv2.polylines(img, [p[68:71], p[71:74]], False, hair, int(lw[n]) + 1, L8, _SHIFT)
        for eye in (e[0], e[1]):                            # eye openness is drawn, not in the points
            cv2.ellipse(img, eye, (r[5], int(eye_h[n])), roll[n], 0, 360, (245, 245, 245), -1, L8, _SHIFT)
            cv2.circle(img, eye, min(r[6], int(eye_h[n])), (40, 30, 20), -1, L8, _SHIFT)
        cv2.line(img, x[2], pl[76], dark, int(lw[n]), L8, _SHIFT)
        lips = p[51:59]
        cv2.fillPoly(img, [lips], (60, 20, 25), L8, _SHIFT)
        if F[n, 9] > 0.5:
            cv2.fillPoly(img, [Di[n]], (250, 250, 240), L8, _SHIFT)
        if F[n, 8] > 0.5:
            cv2.ellipse(img, x[3], (r[7], r[8]), 0, 0, 360, (225, 100, 120), -1, L8, _SHIFT)
        cv2.polylines(img, [lips], True, (170, 70, 80), int(lw[n]) + 1, L8, _SHIFT)
        cv2.polylines(img, [arms[0][n], arms[1][n]], False, cloth, int(arm_w[n]), L8, _SHIFT)
        for hs in (9, 30):                                  # hands, in front of the face
            cv2.fillConvexPoly(img, cv2.convexHull(palms[hs][n]), skin, L8, _SHIFT)
            fingers = [c[n] for c in chains[hs]]
            cv2.polylines(img, fingers, False, skin, int(finger_w[n]), L8, _SHIFT)
            cv2.polylines(img, fingers[:5], False, dark, 1, L8, _SHIFT)
            cv2.polylines(img, [tips[hs][n]], False, (235, 200, 200), max(1, r[9] // 8), L8, _SHIFT)
    return out
