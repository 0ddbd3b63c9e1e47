"""HybrIK (ResNet-34) head, analytical inverse kinematics and SMPL layer, as the released files behave.

Written from the UNSPAT spec, appendix "loading HybrIK ResNet-34 weights" (A.1-A.8): deconvolution head with
renormalised soft-argmax, pooled branch (shape, twist, leaf quaternions, camera, sigma), the two ways HybrIK
turns heatmap coordinates into a metric skeleton (paper model: crop transform + intrinsics + root depth;
camera models: predicted weak camera with a virtual focal length), the adaptive inference IK (Kabsch root,
15 mm position rule, leaf order 10, 11, 15, 22 and the right-hand quirk of the 24-joint child map) and the
training-path ("naive") IK. Rest joints, parents and child maps are inputs, so any SMPL-shaped body model
works (the synthetic one of the reference cases, or a user's SMPL).

Module names are ours (``head.deconv1`` ...); :func:`official_to_ours` maps HybrIK's key names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mocap_cli.errors import MocapError
from mocap_cli.nets.checkpoints import read_state_dict
from mocap_cli.nets.resnet import ResNetTrunk, resnet34_trunk
from mocap_cli.weights.registry import WeightSpec, family_spec

Variant = Literal["paper24", "cam29"]

SMPL_PARENTS_24 = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
LEAF_PARENTS_29 = (15, 22, 23, 10, 11)  # head top, left/right middle fingertip, left/right big toe
LEAF_VERTEX_IDS = (411, 2445, 5905, 3216, 6617)
FOCAL_LENGTH = 1000.0
INPUT_SIZE = 256
DEPTH_FACTOR_CAM = 2.2
DEPTH_FACTOR_PAPER = 2.0
PIXEL_MEAN = (0.406, 0.457, 0.480)  # RGB, applied after /255 (HybrIK data code)
PIXEL_STD = (0.225, 0.224, 0.229)


# --------------------------------------------------------------------------------------------- geometry


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3, 1) -> (..., 3, 3) cross-product matrix."""
    x, y, z = v[..., 0, 0], v[..., 1, 0], v[..., 2, 0]
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*v.shape[:-2], 3, 3)


def _rodrigues(axis_unit: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``I + sin [n]x + (1 - cos) [n]x^2``; axis (..., 3, 1), cos/sin (..., 1, 1)."""
    k = _skew(axis_unit)
    eye = torch.eye(3, dtype=k.dtype, device=k.device).expand_as(k)
    return eye + sin * k + (1 - cos) * (k @ k)


def swing(rest: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Minimal rotation taking the direction of ``rest`` to that of ``target`` (both (..., 3, 1))."""
    axis = torch.cross(rest, target, dim=-2)
    axis_norm = torch.linalg.vector_norm(axis, dim=-2, keepdim=True)
    rn = torch.linalg.vector_norm(rest, dim=-2, keepdim=True)
    tn = torch.linalg.vector_norm(target, dim=-2, keepdim=True)
    cos = (rest * target).sum(dim=-2, keepdim=True) / (rn * tn + eps)
    sin = axis_norm / (rn * tn + eps)
    return _rodrigues(axis / (axis_norm + eps), cos, sin)


def twist(bone: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Rotation by the angle (cos, sin) about ``bone`` (..., 3, 1); cos/sin (..., 1, 1)."""
    n = torch.linalg.vector_norm(bone, dim=-2, keepdim=True)
    return _rodrigues(bone / (n + eps), cos, sin)


def quat_wxyz_to_rotmat(quat: torch.Tensor) -> torch.Tensor:
    """HybrIK's quaternion (w, x, y, z) -> matrix; the quaternion is divided by (norm + 1e-8)."""
    q = quat / (torch.linalg.vector_norm(quat, dim=-1, keepdim=True) + 1e-8)
    w, x, y, z = q.unbind(-1)
    w2, x2, y2, z2 = w * w, x * x, y * y, z * z
    wx, wy, wz, xy, xz, yz = w * x, w * y, w * z, x * y, x * z, y * z
    m = torch.stack(
        [
            w2 + x2 - y2 - z2,
            2 * xy - 2 * wz,
            2 * wy + 2 * xz,
            2 * wz + 2 * xy,
            w2 - x2 + y2 - z2,
            2 * yz - 2 * wx,
            2 * xz - 2 * wy,
            2 * wx + 2 * yz,
            w2 - x2 - y2 + z2,
        ],
        dim=-1,
    )
    return m.reshape(*quat.shape[:-1], 3, 3)


def hybrik_parents(num_joints: int) -> torch.Tensor:
    """SMPL parents for 24 joints, plus the five leaf tips for 29."""
    parents = list(SMPL_PARENTS_24) + (list(LEAF_PARENTS_29) if num_joints == 29 else [])
    if num_joints not in (24, 29):
        raise ValueError(f"HybrIK skeletons have 24 or 29 joints, not {num_joints}")
    return torch.tensor(parents, dtype=torch.long)


def hybrik_children(parents: torch.Tensor) -> torch.Tensor:
    """The child map HybrIK's SMPL layer builds, quirks included (A.7).

    First child in index order; pelvis -> spine1 (3); spine3 -> neck (12). With 24 joints the root's
    parent index -1 wraps to the last joint, so the right hand gets the pelvis as its "child".
    """
    n = parents.shape[0]
    children = [-1] * n
    for i in range(n):
        p = int(parents[i])
        if children[p] < 0:  # p == -1 addresses the last joint, as in the official code
            children[p] = i
    children[0] = 3
    children[9] = 12
    if n == 29:
        children[28] = -1
    return torch.tensor(children, dtype=torch.long)


def rest_joints_from_betas(
    betas: torch.Tensor,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor,
    j_regressor: torch.Tensor,
    leaf_vertex_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shaped template vertices and rest joints ``J_regressor (v_template + shapedirs beta)`` (+ leaf vertices)."""
    v_shaped = v_template + torch.einsum("bl,mkl->bmk", betas, shapedirs)
    joints = torch.einsum("bik,ji->bjk", v_shaped, j_regressor)
    if leaf_vertex_ids is not None:
        joints = torch.cat([joints, v_shaped[:, leaf_vertex_ids]], dim=1)
    return v_shaped, joints


def _rel_vectors(points: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) -> (B, N, 3, 1) parent-relative vectors; joint 0 keeps its absolute position."""
    rel = points.clone()
    rel[:, 1:] = points[:, 1:] - points[:, parents[1:]]
    return rel.unsqueeze(-1)


def _pelvis_children(parents: torch.Tensor, children: torch.Tensor) -> list[int]:
    out = [int(children[0])]
    for i in range(1, parents.shape[0]):
        if int(parents[i]) == 0 and i not in out:
            out.append(i)
    return out


def _root_kabsch(rest: torch.Tensor, pred: torch.Tensor, kids: list[int]) -> torch.Tensor:
    """Kabsch fit of rest bones to predicted bones of the pelvis' children, with the reflection fix."""
    rest_mat = torch.cat([rest[:, k] for k in kids], dim=2)  # (B, 3, K)
    target_mat = torch.cat([pred[:, k] for k in kids], dim=2)
    s = rest_mat @ target_mat.transpose(1, 2)
    u, _, vh = torch.linalg.svd(s)
    v = vh.transpose(1, 2)
    det = torch.det(v @ u.transpose(1, 2))
    fix = torch.diag_embed(torch.stack([torch.ones_like(det), torch.ones_like(det), det], dim=-1))
    rot = v @ fix @ u.transpose(1, 2)
    zero = (s.sum(dim=(1, 2)) == 0).reshape(-1, 1, 1)
    return torch.where(zero, torch.eye(3, dtype=s.dtype, device=s.device).expand_as(rot), rot)


def _root_two_swings(rest: torch.Tensor, pred: torch.Tensor, kids: list[int]) -> torch.Tensor:
    """Training-path root: swing the spine bone, then align the hip midpoints about it."""
    spine = kids[0]
    spine_pred, spine_rest = pred[:, spine], rest[:, spine]
    spine_dir = spine_pred / (torch.linalg.vector_norm(spine_pred, dim=1, keepdim=True) + 1e-8)
    r_spine = swing(spine_rest, spine_pred)
    others = kids[1:]
    c_pred = sum(pred[:, k] for k in others) / len(others)
    c_rest = sum(rest[:, k] for k in others) / len(others)
    c_rest = r_spine @ c_rest
    c_pred = c_pred - (c_pred * spine_dir).sum(dim=1, keepdim=True) * spine_dir
    c_rest = c_rest - (c_rest * spine_dir).sum(dim=1, keepdim=True) * spine_dir
    return swing(c_rest, c_pred) @ r_spine


def _twist_from_phi(bone: torch.Tensor, phi: torch.Tensor, eps: float) -> torch.Tensor:
    cos = phi[:, 0].reshape(-1, 1, 1)
    sin = phi[:, 1].reshape(-1, 1, 1)
    return twist(bone, cos, sin, eps)


def hybrik_ik(
    pose_skeleton: torch.Tensor,
    phis: torch.Tensor,
    rest_joints: torch.Tensor,
    parents: torch.Tensor,
    children: torch.Tensor,
    leaf_rotmats: torch.Tensor | None = None,
    *,
    adaptive: bool = True,
    threshold_m: float = 0.015,
    right_hand_from_leaf: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """HybrIK's analytical IK.

    pose_skeleton (B, N, 3) metres (N = 24 with ``leaf_rotmats`` (B, 5, 3, 3), or 29), phis (B, 23, 2) raw
    (cos, sin), rest_joints (B, N, 3). ``adaptive=True`` = the official inference solver (Kabsch root,
    15 mm position rule); ``adaptive=False`` = the official training solver (two-swing root, predicted bone
    directions), extended to 24 joints with leaf rotations. ``right_hand_from_leaf`` replaces the 24-joint
    right-hand quirk (A.7) by leaf row 4 (not HybrIK parity).
    Returns local rotations (B, 24, 3, 3) and the rotated rest skeleton (B, N, 3) (zeros at 29-joint leaves).
    """
    bsz, n = pose_skeleton.shape[:2]
    dtype, device = pose_skeleton.dtype, pose_skeleton.device
    rel_rest = _rel_vectors(rest_joints, parents)
    rel_pred = _rel_vectors(pose_skeleton, parents)
    rel_pred[:, 0] = rel_rest[:, 0]
    final = (pose_skeleton - pose_skeleton[:, :1]).unsqueeze(-1) + rel_rest[:, :1]
    phis = phis / (torch.linalg.vector_norm(phis, dim=2, keepdim=True) + 1e-8)
    kids = _pelvis_children(parents, children)
    root = _root_kabsch(rel_rest, rel_pred, kids) if adaptive else _root_two_swings(rel_rest, rel_pred, kids)
    twist_eps = 0.0 if adaptive else 1e-8

    rotated = [rel_rest[:, 0]] + [torch.zeros(bsz, 3, 1, dtype=dtype, device=device)] * (n - 1)
    chain: list[torch.Tensor | None] = [root] + [None] * (n - 1)
    local: list[torch.Tensor] = [root]
    leaf_count = 0
    for i in range(1, n):
        p = int(parents[i])
        c = int(children[i])
        g_p = chain[p]
        assert g_p is not None
        if c == -1:
            if leaf_rotmats is None:
                continue  # 29-joint leaf tips carry no rotation
            rotated[i] = rotated[p] + g_p @ rel_rest[:, i]
            rot = leaf_rotmats[:, leaf_count]
            leaf_count += 1
        else:
            rotated[i] = rotated[p] + g_p @ rel_rest[:, i]
            template = rel_rest[:, c]
            if right_hand_from_leaf and leaf_rotmats is not None and i == 23 and n == 24:
                rot = leaf_rotmats[:, 4]
            else:
                if adaptive:
                    target = final[:, c] - rotated[i]
                    orig = rel_pred[:, c]
                    orig = (
                        orig
                        * torch.linalg.vector_norm(template, dim=1, keepdim=True)
                        / torch.linalg.vector_norm(orig, dim=1, keepdim=True)
                    )
                    far = torch.linalg.vector_norm(target - orig, dim=1, keepdim=True) > threshold_m
                    target = torch.where(far, orig, target)
                else:
                    target = rel_pred[:, c]
                target = g_p.transpose(1, 2) @ target
                rot = swing(template, target) @ _twist_from_phi(template, phis[:, i - 1], twist_eps)
        chain[i] = g_p @ rot
        if i < 24:
            local.append(rot)
    return torch.stack(local, dim=1), torch.cat(rotated, dim=2).transpose(1, 2)


def rigid_transform(
    rot_mats: torch.Tensor, joints: torch.Tensor, parents: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kinematics: posed joints (B, J, 3) and skinning transforms (B, J, 4, 4) (rest joint removed)."""
    bsz, nj = joints.shape[:2]
    j = joints.unsqueeze(-1)
    rel = j.clone()
    rel[:, 1:] = j[:, 1:] - j[:, parents[1:]]
    top = torch.cat([rot_mats, rel], dim=-1)
    bottom = torch.zeros(bsz, nj, 1, 4, dtype=joints.dtype, device=joints.device)
    bottom[..., 0, 3] = 1
    local = torch.cat([top, bottom], dim=-2)
    chain = [local[:, 0]]
    for i in range(1, nj):
        chain.append(chain[int(parents[i])] @ local[:, i])
    transforms = torch.stack(chain, dim=1)
    posed = transforms[:, :, :3, 3]
    jh = F.pad(j, [0, 0, 0, 1])
    rel_transforms = transforms - F.pad(transforms @ jh, [3, 0, 0, 0, 0, 0, 0, 0])
    return posed, rel_transforms


# --------------------------------------------------------------------------------------------- body model


class SMPLBody(nn.Module):
    """SMPL-shaped body model buffers (not persistent: never saved into our checkpoints)."""

    def __init__(
        self,
        v_template: torch.Tensor,
        shapedirs: torch.Tensor,
        posedirs: torch.Tensor,
        j_regressor: torch.Tensor,
        j_regressor_h36m: torch.Tensor,
        lbs_weights: torch.Tensor,
        parents: torch.Tensor,
        leaf_vertex_ids: torch.Tensor | None = None,
        faces: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        nv = v_template.shape[0]
        if posedirs.dim() == 3:  # (V, 3, 207) -> HybrIK's (207, V*3)
            posedirs = posedirs.reshape(nv * 3, -1).t()
        buffers = dict(
            v_template=v_template,
            shapedirs=shapedirs,
            posedirs=posedirs,
            j_regressor=j_regressor,
            j_regressor_h36m=j_regressor_h36m,
            lbs_weights=lbs_weights,
        )
        for k, v in buffers.items():
            self.register_buffer(k, v.float().contiguous(), persistent=False)
        self.register_buffer("parents", parents.long(), persistent=False)
        ids = leaf_vertex_ids if leaf_vertex_ids is not None else torch.tensor(LEAF_VERTEX_IDS)
        self.register_buffer("leaf_vertex_ids", ids.long(), persistent=False)
        self.register_buffer(
            "faces", faces.long() if faces is not None else torch.zeros(0, 3, dtype=torch.long), persistent=False
        )

    @classmethod
    def from_npz(cls, path: str | Path) -> "SMPLBody":
        """Arrays named as in reference/hybrik/synthetic_smpl.npz (posedirs full or as two factors)."""
        path = Path(path)
        if not path.is_file():
            raise MocapError(f"Body model file {path} does not exist; check the path.")
        z = np.load(path, allow_pickle=False)
        t = lambda k: torch.from_numpy(np.asarray(z[k]))  # noqa: E731
        nv = z["v_template"].shape[0]
        if "posedirs" in z.files:
            posedirs = t("posedirs").float()
        else:
            posedirs = (t("posedirs_U").double() @ t("posedirs_V").double()).float().reshape(nv, 3, -1)
        parents = t("kintree_table")[0].long().clone()
        parents[0] = -1
        return cls(
            t("v_template"),
            t("shapedirs"),
            posedirs,
            t("J_regressor"),
            t("J_regressor_h36m"),
            t("weights"),
            parents,
            t("leaf_vertex_ids") if "leaf_vertex_ids" in z.files else None,
            t("faces") if "faces" in z.files else None,
        )

    def rest_joints(self, betas: torch.Tensor, num_joints: int = 24) -> torch.Tensor:
        leaves = self.leaf_vertex_ids if num_joints == 29 else None
        return rest_joints_from_betas(betas, self.v_template, self.shapedirs, self.j_regressor, leaves)[1]

    def hybrik(
        self,
        pose_skeleton: torch.Tensor,
        betas: torch.Tensor,
        phis: torch.Tensor,
        leaf_quat: torch.Tensor | None = None,
        *,
        adaptive: bool = True,
        right_hand_from_leaf: bool = False,
        with_vertices: bool = True,
    ) -> dict[str, torch.Tensor]:
        """``SMPL_layer.hybrik``: IK, then SMPL. Outputs root-centred (vertices/H36M on the H36M pelvis)."""
        n = pose_skeleton.shape[1]
        leaf_rot = quat_wxyz_to_rotmat(leaf_quat) if leaf_quat is not None else None
        v_shaped, rest = rest_joints_from_betas(
            betas,
            self.v_template,
            self.shapedirs,
            self.j_regressor,
            None if leaf_quat is not None else self.leaf_vertex_ids,
        )
        parents = hybrik_parents(n).to(pose_skeleton.device)
        children = hybrik_children(parents)
        rot_mats, _ = hybrik_ik(
            pose_skeleton,
            phis,
            rest,
            parents,
            children,
            leaf_rot,
            adaptive=adaptive,
            right_hand_from_leaf=right_hand_from_leaf,
        )
        joints, transforms = rigid_transform(rot_mats, rest[:, :24], self.parents)
        out = {"rot_mats": rot_mats, "joints": joints - joints[:, :1]}
        if with_vertices:
            bsz = rot_mats.shape[0]
            eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
            pose_feature = (rot_mats[:, 1:] - eye).reshape(bsz, -1)
            v_posed = v_shaped + (pose_feature @ self.posedirs).reshape(bsz, -1, 3)
            t = (self.lbs_weights @ transforms.reshape(bsz, 24, 16)).reshape(bsz, -1, 4, 4)
            verts = (t[..., :3, :3] @ v_posed.unsqueeze(-1)).squeeze(-1) + t[..., :3, 3]
            h36m = torch.einsum("bik,ji->bjk", verts, self.j_regressor_h36m)
            out["vertices"] = verts - h36m[:, :1]
            out["joints_h36m"] = h36m - h36m[:, :1]
        return out


# --------------------------------------------------------------------------------------------- head


@dataclass
class HeadOutput:
    uvd: torch.Tensor  # (B, J, 3) in [-0.5, 0.5)
    marginals: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # x, y, z, each (B, J, 64)
    maxvals: torch.Tensor  # (B, J)
    fc2_out: torch.Tensor  # (B, 1024)
    delta_shape: torch.Tensor
    betas: torch.Tensor  # (B, 10)
    phis: torch.Tensor  # (B, 23, 2) raw
    cam: torch.Tensor  # (B, 3) (s, tx, ty) in HybrIK units
    sigma: torch.Tensor  # (B, J)
    leaf: torch.Tensor | None = None  # (B, 5, 4) quaternions (w, x, y, z), paper model only


def _normal_init(m: nn.Module, std: float) -> None:
    nn.init.normal_(m.weight, std=std)
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)


def soft_argmax_3d(
    logits: torch.Tensor,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """(B, J, D, H, W) logits -> uvd (B, J, 3) in [-0.5, 0.5), marginals (x, y, z), peak probability (B, J).

    Softmax over all voxels, divided by its sum once more as HybrIK does (A.4 step 3), then marginal
    expectations ``sum_x x p(x) / size - 0.5``.
    """
    bsz, nj, d, hh, ww = logits.shape
    hm = torch.softmax(logits.reshape(bsz, nj, -1), dim=2)
    hm = hm / hm.sum(dim=2, keepdim=True)
    maxvals = hm.max(dim=2).values
    hm = hm.reshape(bsz, nj, d, hh, ww)
    mx, my, mz = hm.sum((2, 3)), hm.sum((2, 4)), hm.sum((3, 4))

    def coord(m: torch.Tensor, size: int) -> torch.Tensor:
        return (m * torch.arange(m.shape[-1], dtype=m.dtype, device=m.device)).sum(-1, keepdim=True) / float(size) - 0.5

    return torch.cat([coord(mx, ww), coord(my, hh), coord(mz, d)], dim=2), (mx, my, mz), maxvals


class HybrIKHead(nn.Module):
    """Deconvolution heatmap head + pooled regression branch on a (B, 512, 8, 8) feature map."""

    def __init__(
        self,
        variant: Variant = "paper24",
        deconv: tuple[int, int, int] = (256, 256, 256),
        in_channels: int = 512,
        depth_dim: int = 64,
    ) -> None:
        super().__init__()
        self.variant = variant
        self.num_joints = 24 if variant == "paper24" else 29
        self.depth_dim = depth_dim
        chans = (in_channels,) + tuple(deconv)
        for i in range(3):
            setattr(
                self, f"deconv{i + 1}", nn.ConvTranspose2d(chans[i], chans[i + 1], 4, stride=2, padding=1, bias=False)
            )
            setattr(self, f"bn{i + 1}", nn.BatchNorm2d(chans[i + 1]))
        self.heatmap_conv = nn.Conv2d(deconv[-1], self.num_joints * depth_dim, 1)
        self.fc1 = nn.Linear(in_channels, 1024)
        self.drop1 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(1024, 1024)
        self.drop2 = nn.Dropout(0.5)
        self.dec_shape = nn.Linear(1024, 10)
        self.dec_twist = nn.Linear(1024, 23 * 2)
        self.dec_leaf = nn.Linear(1024, 5 * 4) if variant == "paper24" else None
        self.dec_cam = nn.Linear(1024, 3)
        self.dec_sigma = nn.Linear(1024, self.num_joints)
        self.register_buffer("init_shape", torch.zeros(10))
        self.register_buffer("init_cam", torch.tensor([0.9, 0.0, 0.0]))
        for i in range(3):
            _normal_init(getattr(self, f"deconv{i + 1}"), 0.001)
        _normal_init(self.heatmap_conv, 0.001)
        for m in (self.dec_shape, self.dec_twist, self.dec_leaf):
            if m is not None:
                nn.init.xavier_uniform_(m.weight, gain=0.01)
        _normal_init(self.dec_cam, 0.001)
        _normal_init(self.dec_sigma, 0.001)

    def forward(self, x: torch.Tensor) -> HeadOutput:
        bsz = x.shape[0]
        h = x
        for i in range(3):
            h = F.relu(getattr(self, f"bn{i + 1}")(getattr(self, f"deconv{i + 1}")(h)))
        logits = self.heatmap_conv(h).reshape(bsz, self.num_joints, self.depth_dim, h.shape[2], h.shape[3])
        uvd, marginals, maxvals = soft_argmax_3d(logits)
        mx, my, mz = marginals

        g = x.mean(dim=(2, 3))
        g = self.drop2(self.fc2(self.drop1(self.fc1(g))))
        delta_shape = self.dec_shape(g)
        return HeadOutput(
            uvd=uvd,
            marginals=(mx, my, mz),
            maxvals=maxvals,
            fc2_out=g,
            delta_shape=delta_shape,
            betas=delta_shape + self.init_shape,
            phis=self.dec_twist(g).reshape(bsz, 23, 2),
            cam=self.dec_cam(g) + self.init_cam,
            sigma=torch.sigmoid(self.dec_sigma(g)),
            leaf=self.dec_leaf(g).reshape(bsz, 5, 4) if self.dec_leaf is not None else None,
        )


# --------------------------------------------------------------------------------------------- uvd -> metric


def uvd_to_xyz_camera(
    uvd: torch.Tensor,
    cam: torch.Tensor,
    bboxes: torch.Tensor | None = None,
    img_center: torch.Tensor | None = None,
    *,
    depth_factor: float = DEPTH_FACTOR_CAM,
    focal: float = FOCAL_LENGTH,
    input_size: int = INPUT_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera models (A.6): returns root-relative xyz in units of ``depth_factor`` and cam_root (metres)."""
    s, t = cam[:, :1].unsqueeze(1), cam[:, 1:].unsqueeze(1)
    zc = focal / (input_size * s + 1e-9)  # (B, 1, 1)
    d = uvd[:, :, 2:]
    if bboxes is not None:
        if img_center is None:
            raise ValueError("img_center is needed with bboxes")
        w = bboxes[:, 2] - bboxes[:, 0]
        h = bboxes[:, 3] - bboxes[:, 1]
        ox = ((bboxes[:, 0] + bboxes[:, 2]) * 0.5 - img_center[:, 0]) / w
        oy = ((bboxes[:, 1] + bboxes[:, 3]) * 0.5 - img_center[:, 1]) / h
        offset = torch.stack([ox, oy], dim=1).unsqueeze(1)
        xy = (uvd[:, :, :2] + offset) * input_size / focal * (d * depth_factor + zc)
    else:
        xy = uvd[:, :, :2] * input_size / focal * (d * depth_factor + zc) - t
    xyz = torch.cat([xy / depth_factor, d], dim=2)
    cam_root = xyz[:, 0] * depth_factor
    cam_root = cam_root + torch.cat([torch.zeros_like(zc[:, 0]).expand(-1, 2), zc[:, 0]], dim=1)
    return xyz - xyz[:, :1], cam_root


def uvd_to_xyz_paper(
    uvd: torch.Tensor,
    trans_inv: torch.Tensor,
    intrinsic_inv: torch.Tensor,
    joint_root: torch.Tensor,
    depth_factor: torch.Tensor,
    *,
    input_size: int = INPUT_SIZE,
) -> torch.Tensor:
    """Paper model (A.6): back-projection with the crop->image affine, inverse intrinsics and root position."""
    df = depth_factor.reshape(-1, 1)
    uv = (uvd[:, :, :2] + 0.5) * input_size
    dz = uvd[:, :, 2] * df
    uv1 = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=2).unsqueeze(-1)
    img = trans_inv.unsqueeze(1) @ uv1
    ray = intrinsic_inv.unsqueeze(1) @ torch.cat([img, torch.ones_like(img[:, :, :1])], dim=2)
    xyz = ray.squeeze(-1) * (dz + joint_root[:, 2:3]).unsqueeze(-1) - joint_root.unsqueeze(1)
    xyz = xyz / df.unsqueeze(-1)
    return xyz - xyz[:, :1]


# --------------------------------------------------------------------------------------------- full model


@dataclass
class HybrIKPrediction:
    head: HeadOutput
    xyz: torch.Tensor  # (B, J, 3) root-relative, units of ``depth_factor`` (HybrIK's pred_xyz_jts_*)
    skeleton_m: torch.Tensor  # (B, J, 3) metres, root-relative, camera axes: the IK input
    depth_factor: float
    cam_root: torch.Tensor | None = None  # (B, 3) metres (camera models)
    smpl: dict[str, torch.Tensor] = field(default_factory=dict)  # rot_mats, joints, vertices, joints_h36m


def head_to_skeleton(
    out: HeadOutput,
    variant: Variant,
    *,
    bboxes: torch.Tensor | None = None,
    img_center: torch.Tensor | None = None,
    trans_inv: torch.Tensor | None = None,
    intrinsic_inv: torch.Tensor | None = None,
    joint_root: torch.Tensor | None = None,
    depth_factor: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor | None]:
    """(xyz in D units, skeleton in metres, D, cam_root) from the head output, as HybrIK does per variant.

    Paper model without intrinsics/root: the UNSPAT §2.7 approximation ``2.2 m * (p - p_0)`` (no HybrIK
    parity is possible then, see A.1).
    """
    if variant == "cam29":
        xyz, cam_root = uvd_to_xyz_camera(out.uvd, out.cam, bboxes, img_center)
        return xyz, xyz * DEPTH_FACTOR_CAM, DEPTH_FACTOR_CAM, cam_root
    if trans_inv is not None and intrinsic_inv is not None and joint_root is not None:
        if depth_factor is None:
            depth_factor = torch.full(
                (out.uvd.shape[0], 1), DEPTH_FACTOR_PAPER, dtype=out.uvd.dtype, device=out.uvd.device
            )
        xyz = uvd_to_xyz_paper(out.uvd, trans_inv, intrinsic_inv, joint_root, depth_factor)
        return xyz, xyz * 2.0, DEPTH_FACTOR_PAPER, None  # the factor 2 is hard-coded in HybrIK
    p = out.uvd - out.uvd[:, :1]
    return p, p * DEPTH_FACTOR_CAM, DEPTH_FACTOR_CAM, None


class HybrIK(nn.Module):
    """Per-frame HybrIK (ResNet-34 trunk + head); SMPL from an attached :class:`SMPLBody`."""

    def __init__(
        self,
        variant: Variant = "paper24",
        deconv: tuple[int, int, int] = (256, 256, 256),
        backbone: ResNetTrunk | None = None,
    ) -> None:
        super().__init__()
        self.variant = variant
        self.backbone = backbone if backbone is not None else resnet34_trunk()
        self.head = HybrIKHead(variant, deconv)
        self.body: SMPLBody | None = None

    def attach_body(self, body: SMPLBody) -> None:
        self.body = body

    def forward(
        self,
        images: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
        with_smpl: bool = True,
        adaptive_ik: bool | None = None,
        **geometry: torch.Tensor,
    ) -> HybrIKPrediction:
        """Images (B, 3, 256, 256) normalised, or backbone ``features`` (B, 512, 8, 8).

        ``geometry``: camera models take ``bboxes`` (B, 4) + ``img_center`` (B, 2); the paper model takes
        ``trans_inv``, ``intrinsic_inv``, ``joint_root``, ``depth_factor``.
        """
        feats = features if features is not None else self.backbone(images)
        out = self.head(feats)
        return predict_from_head(
            out,
            self.variant,
            self.body if with_smpl else None,
            adaptive_ik=(not self.training) if adaptive_ik is None else adaptive_ik,
            **geometry,
        )


def predict_from_head(
    out: HeadOutput,
    variant: Variant,
    body: SMPLBody | None,
    *,
    adaptive_ik: bool = True,
    with_vertices: bool = True,
    **geometry: torch.Tensor,
) -> HybrIKPrediction:
    xyz, skel, df, cam_root = head_to_skeleton(out, variant, **geometry)
    pred = HybrIKPrediction(head=out, xyz=xyz, skeleton_m=skel, depth_factor=df, cam_root=cam_root)
    if body is not None:
        pred.smpl = body.hybrik(skel, out.betas, out.phis, out.leaf, adaptive=adaptive_ik, with_vertices=with_vertices)
    return pred


# --------------------------------------------------------------------------------------------- checkpoints


_HEAD_MAP = {
    "deconv_layers.0.": "deconv1.",
    "deconv_layers.1.": "bn1.",
    "deconv_layers.3.": "deconv2.",
    "deconv_layers.4.": "bn2.",
    "deconv_layers.6.": "deconv3.",
    "deconv_layers.7.": "bn3.",
    "final_layer.": "heatmap_conv.",
    "fc1.": "fc1.",
    "fc2.": "fc2.",
    "decshape.": "dec_shape.",
    "decphi.": "dec_twist.",
    "decleaf.": "dec_leaf.",
    "deccam.": "dec_cam.",
    "decsigma.": "dec_sigma.",
}
_HEAD_BUFFERS = {"init_shape": "init_shape", "init_cam": "init_cam"}


def detect_variant(state_dict: dict[str, torch.Tensor]) -> Variant:
    """Paper model (24 heatmap joints, ``decleaf``) or camera model (29 joints, ``deccam``) from the keys."""
    w = state_dict.get("final_layer.weight")
    if w is None:
        raise MocapError(
            "This file has no HybrIK heatmap layer (final_layer.weight); use a HybrIK ResNet-34 checkpoint."
        )
    if w.shape[0] == 24 * 64 and "decleaf.weight" in state_dict:
        return "paper24"
    if w.shape[0] == 29 * 64 and "deccam.weight" in state_dict:
        return "cam29"
    raise MocapError(
        f"Unrecognised HybrIK head (final_layer has {w.shape[0]} outputs); expected the ResNet-34 paper or camera "
        "model."
    )


def official_to_ours(
    state_dict: dict[str, torch.Tensor], prefix: str = ""
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename HybrIK keys to ours (``preact.`` -> ``backbone.``, head keys -> ``head.*``); drop ``smpl.*``.

    Returns the mapped dict and the official keys that were not understood.
    """
    mapped: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for k, v in state_dict.items():
        if k.startswith("smpl."):
            continue
        if k.startswith("preact."):
            mapped[prefix + "backbone." + k[len("preact.") :]] = v
            continue
        if k in _HEAD_BUFFERS:
            mapped[prefix + "head." + _HEAD_BUFFERS[k]] = v
            continue
        for src, dst in _HEAD_MAP.items():
            if k.startswith(src):
                mapped[prefix + "head." + dst + k[len(src) :]] = v
                break
        else:
            unknown.append(k)
    return mapped, unknown


def load_official_into(
    module: nn.Module, state_dict: dict[str, torch.Tensor], *, prefix: str = "", require_backbone: bool = True
) -> list[str]:
    """Load a released HybrIK state dict into ``module`` (HybrIK, or UNSPAT with ``prefix=''``).

    Every expected key must be present except ``head.dec_sigma.*`` (absent from the released camera files)
    and, for the paper model, ``head.dec_cam.*``/``head.init_cam`` (it has no camera); those keep their
    initialisation. Returns the list of our keys that kept their initialisation.
    """
    mapped, unknown = official_to_ours(state_dict, prefix)
    if unknown:
        raise MocapError(
            f"The HybrIK checkpoint has keys this loader does not know ({unknown[0]}, ...); use a ResNet-34 HybrIK "
            "file."
        )
    own = module.state_dict()
    allowed_missing = (prefix + "head.dec_sigma.", prefix + "head.dec_cam.", prefix + "head.init_cam")
    kept: list[str] = []
    for k in own:
        if k in mapped:
            continue
        hybrik_part = k.startswith(prefix + "head.") or (require_backbone and k.startswith(prefix + "backbone."))
        if not hybrik_part:
            continue
        if k.startswith(allowed_missing):
            kept.append(k)
            continue
        raise MocapError(f"The HybrIK checkpoint lacks {k}; it is not a complete ResNet-34 HybrIK file.")
    for k, v in mapped.items():
        if k not in own:
            raise MocapError(f"The HybrIK checkpoint has {k}, which this model does not expect; check the variant.")
        if own[k].shape != v.shape:
            raise MocapError(
                f"{k} has shape {tuple(v.shape)} in the checkpoint but {tuple(own[k].shape)} in the model."
            )
    module.load_state_dict(mapped, strict=False)
    return kept


def read_hybrik_state_dict(path: Path, spec: WeightSpec | None = None) -> dict[str, torch.Tensor]:
    """The weights of a released HybrIK file, unwrapped as ``weights/hybrik.toml`` declares (plain or under
    ``"model"``, DataParallel prefix and ``smpl.*`` buffers removed)."""
    return read_state_dict(path, spec or family_spec("hybrik"), "HybrIK")


def load_hybrik(path: Path | str, *, spec: WeightSpec | None = None) -> HybrIK:
    """A released HybrIK ResNet-34 file → eval-mode :class:`HybrIK` of the class its keys call for."""
    return build_hybrik_from_state_dict(read_hybrik_state_dict(Path(path), spec))[0]


def build_hybrik_from_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[HybrIK, list[str]]:
    """A :class:`HybrIK` of the right class and deconv widths, loaded from an official state dict."""
    variant = detect_variant(state_dict)
    widths = tuple(int(state_dict[f"deconv_layers.{i}.weight"].shape[1]) for i in (0, 3, 6))
    model = HybrIK(variant, widths)  # type: ignore[arg-type]
    has_backbone = any(k.startswith("preact.") for k in state_dict)
    kept = load_official_into(model, state_dict, require_backbone=has_backbone)
    return model.eval(), kept


def twist_from_rotations(
    rot_mats: torch.Tensor, rest_joints: torch.Tensor, parents: torch.Tensor, children: torch.Tensor
) -> torch.Tensor:
    """Ground-truth twist (cos, sin) (B, 23, 2) of local rotations about each joint's template bone (spec §2.7).

    ``R_sw = swing(t, R t)``, ``R_tw = R_sw^T R``, ``cos = (tr R_tw - 1)/2``, ``sin = t_hat . vee(R_tw - R_tw^T)/2``;
    rows of joints without a child (and joint 23's pelvis "child" quirk aside) are (1, 0).
    """
    bsz = rot_mats.shape[0]
    rel_rest = _rel_vectors(rest_joints, parents)
    out = torch.zeros(bsz, 23, 2, dtype=rot_mats.dtype, device=rot_mats.device)
    out[..., 0] = 1
    for i in range(1, 24):
        c = int(children[i])
        if c < 0:
            continue
        t = rel_rest[:, c]
        r = rot_mats[:, i]
        r_tw = swing(t, r @ t).transpose(1, 2) @ r
        cos = (r_tw.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2
        a = r_tw - r_tw.transpose(1, 2)
        vee = torch.stack([a[:, 2, 1], a[:, 0, 2], a[:, 1, 0]], dim=-1)
        t_hat = t[..., 0] / torch.linalg.vector_norm(t[..., 0], dim=-1, keepdim=True)
        out[:, i - 1, 0] = cos
        out[:, i - 1, 1] = 0.5 * (t_hat * vee).sum(-1)
    return out
