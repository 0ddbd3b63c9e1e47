"""A lifted body's size: set to the training population's mean, because 2D keypoints cannot tell it.

A lifter sees normalised 2D keypoints; a tall person far away and a short one close by give the same input, so the
absolute size of its output is a guess. The shipped network guesses from body proportions (its size moves by under
1 % when its 2D input is zoomed by ±40 %), which its simulated training keypoints carry and MediaPipe's real
landmarks apparently do not: on the nine rendered clips its guesses did not follow the performers' sizes (limb
lengths 7 % off on average, 17 % too big on the 1.60 m dancer and 19 % too small on the 1.91 m player), and the
size error carries straight into MPJPE and into the depth of the root path. The mean of the bodies it was trained
on (recorded with the weights by ``mocap train mixste`` as ``body_size_m``) errs less (6 % on average over the same
clips), so the adapter scales each clip's lifted pose to that size; weights without the record (the authors'
checkpoints, trained on Human3.6M's seven subjects) keep their own size. A child comes out adult-sized (and placed
correspondingly farther away), as with the default model, whose MediaPipe landmarks carry an adult size too
(``solve.shared_world``).
"""

from __future__ import annotations

import numpy as np

from mocap_cli.capture.keypoints import H36M

# The eight limb bones: upper and lower legs and arms. Their summed length is the size measure (the trunk's
# joints are defined differently by each source, the limbs' are not).
LIMB_BONES: tuple[tuple[str, str], ...] = tuple(
    (f"{side}_{a}", f"{side}_{b}")
    for side in ("left", "right")
    for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))
)
# The metadata key of ``mocap train mixste``'s weights that records the training bodies' mean size.
BODY_SIZE_KEY = "body_size_m"


def limb_size(pose: np.ndarray) -> np.ndarray:
    """Summed median limb-bone length (metres) of H36M-17 poses (..., F, 17, 3) over their F frames → (...)."""
    return sum(
        np.median(np.linalg.norm(pose[..., H36M[a], :] - pose[..., H36M[b], :], axis=-1), axis=-1)
        for a, b in LIMB_BONES
    )


def at_body_size(pose: np.ndarray, size: float) -> np.ndarray:
    """Root-relative H36M-17 poses (F, 17, 3) scaled about the root so their ``limb_size`` is ``size`` metres."""
    own = float(limb_size(pose))
    if not (np.isfinite(own) and own > 0):
        return pose
    return pose * (size / own)
