"""The thin strip under the panels: detection confidence over the clip, person-lost spans and a cursor.

One column band per video frame; the bar height is the frame's detection confidence (green when confident,
amber below ``LOW``); frames where the person was not detected are red ("person lost" spans, labelled
when wide enough). The strip is drawn once; each frame only copies it and adds the cursor.
"""

from __future__ import annotations

import cv2
import numpy as np

LOW = 0.5
BACKGROUND = (28, 28, 28)
GOOD = (90, 200, 90)
WEAK = (40, 170, 230)
LOST = (50, 50, 210)
CURSOR = (255, 255, 255)
TEXT = (235, 235, 235)


def lost_spans(detected: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges where ``detected`` (F,) is False."""
    d = np.concatenate([[True], np.asarray(detected, dtype=bool), [True]])
    starts = np.flatnonzero(d[:-1] & ~d[1:])
    stops = np.flatnonzero(~d[:-1] & d[1:])
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


class Timeline:
    def __init__(self, confidence: np.ndarray, detected: np.ndarray, size: tuple[int, int]) -> None:
        """confidence (F,) in [0, 1] and detected (F,) per video frame; size (W, H) of the strip."""
        self.frames = len(confidence)
        self.size = size
        width, height = size
        strip = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        for i, (c, d) in enumerate(zip(np.clip(np.nan_to_num(confidence), 0.0, 1.0), detected)):
            x0, x1 = self.column(i), max(self.column(i + 1), self.column(i) + 1)
            if not d:
                strip[:, x0:x1] = LOST
                continue
            top = round((height - 2) * (1.0 - c)) + 1
            strip[top:, x0:x1] = GOOD if c >= LOW else WEAK
        for a, b in lost_spans(detected):
            x0, x1 = self.column(a), self.column(b)
            label = "person lost"
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
            if x1 - x0 > tw + 6 and height > th + 4:
                cv2.putText(
                    strip, label, (x0 + 3, (height + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, TEXT, 1, cv2.LINE_AA
                )
        self.strip = strip

    def column(self, frame: int) -> int:
        return round(frame * self.size[0] / max(self.frames, 1))

    def draw(self, frame: int) -> np.ndarray:
        """The strip (H, W, 3) with the cursor on ``frame``."""
        out = self.strip.copy()
        x = min(self.column(frame), self.size[0] - 1)
        out[:, max(x - 1, 0) : x + 1] = CURSOR
        return out
