"""Lightweight OpenPose's CPU path, rebuilt from its paper for a side-by-side timing in one process.

Osokin, "Real-time 2D Multi-Person Pose Estimation on CPU: Lightweight OpenPose" (2018), §3–4:
a MobileNet-v1 backbone (width 1.0) up to conv5_5, conv4_2 at stride 1 and conv5_1 dilated by 2
(stride 8 in all); a CPM block (1x1 to 128 channels, three depthwise-separable 3x3 convolutions
with ELU added back, one 3x3); an initial stage with a shared trunk of three 3x3 convolutions and
two 1x1 heads (512 channels, then 19 heatmaps / 38 PAFs); one refinement stage of five blocks
(1x1, then 3x3 and dilated 3x3 with batch norm, added back) and the same two heads. PyTorch,
float32, batch norm, input ``(x - 128) / 256``, height 256. Its post-processing upsamples the maps
x4 (bicubic) and finds peaks there; grouping here is this project's vectorised decoder (faster than
LWOP's Python loops, so the comparison favours LWOP).

Random weights: the cost of a network does not depend on them. Only the architecture is taken from
the paper; nothing of LWOP's code is used.
"""
from __future__ import annotations

import numpy as np


def build_lwop(num_heatmaps: int = 19, num_pafs: int = 38):
    """The network as a ``torch.nn.Module`` in eval mode: ``(1, 3, H, W) -> (heatmaps, pafs)`` at stride 8."""
    import torch
    from torch import nn

    def conv(cin, cout, k=3, s=1, d=1, bn=True, act="relu"):
        layers = [nn.Conv2d(cin, cout, k, s, d * (k // 2), dilation=d, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        if act == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif act == "elu":
            layers.append(nn.ELU(inplace=True))
        return nn.Sequential(*layers)

    def dw(cin, cout, s=1, d=1, bn=True, act="relu"):
        layers = [nn.Conv2d(cin, cin, 3, s, d, dilation=d, groups=cin, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(cin))
        layers.append(nn.ReLU(inplace=True) if act == "relu" else nn.ELU(inplace=True))
        layers.append(nn.Conv2d(cin, cout, 1, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True) if act == "relu" else nn.ELU(inplace=True))
        return nn.Sequential(*layers)

    class Heads(nn.Module):
        def __init__(self, cin, mid):
            super().__init__()
            self.heat = nn.Sequential(conv(cin, mid, 1, bn=False), conv(mid, num_heatmaps, 1, bn=False, act=None))
            self.paf = nn.Sequential(conv(cin, mid, 1, bn=False), conv(mid, num_pafs, 1, bn=False, act=None))

        def forward(self, x):
            return self.heat(x), self.paf(x)

    class RefineBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.initial = conv(cin, cout, 1, bn=False)
            self.trunk = nn.Sequential(conv(cout, cout), conv(cout, cout, d=2))

        def forward(self, x):
            x = self.initial(x)
            return x + self.trunk(x)

    class Lwop(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(
                conv(3, 32, s=2), dw(32, 64), dw(64, 128, s=2), dw(128, 128), dw(128, 256, s=2), dw(256, 256),
                dw(256, 512), dw(512, 512, d=2), dw(512, 512), dw(512, 512), dw(512, 512), dw(512, 512))
            self.align = conv(512, 128, 1, bn=False)
            self.cpm_trunk = nn.Sequential(*[dw(128, 128, bn=False, act="elu") for _ in range(3)])
            self.cpm_out = conv(128, 128, bn=False)
            self.initial_trunk = nn.Sequential(*[conv(128, 128, bn=False) for _ in range(3)])
            self.initial_heads = Heads(128, 512)
            self.refine = nn.Sequential(RefineBlock(128 + num_heatmaps + num_pafs, 128),
                                        *[RefineBlock(128, 128) for _ in range(4)])
            self.refine_heads = Heads(128, 128)

        def forward(self, x):
            f = self.align(self.backbone(x))
            f = self.cpm_out(f + self.cpm_trunk(f))
            h, p = self.initial_heads(self.initial_trunk(f))
            return self.refine_heads(self.refine(torch.cat([f, h, p], 1)))

    return Lwop().eval()


class LwopPath:
    """LWOP's single-image CPU path: resize to height 256, pad to a multiple of 8, network (PyTorch
    fp32), maps x4 bicubic, peaks on the upsampled heatmaps, then grouping.

    ``stages(img)`` returns the milliseconds of ``resize``, ``network``, ``peaks`` (upsampling +
    peak search) and ``grouping``.
    """

    def __init__(self, codec, height: int = 256):
        import torch
        self.torch, self.codec, self.height = torch, codec, height
        self.net = build_lwop(codec.num_heatmaps, codec.num_pafs)

    def stages(self, img):
        import time

        import cv2

        from keras_openpose.codec import find_peaks
        t0 = time.perf_counter()
        s = self.height / img.shape[0]
        x = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        h, w = x.shape[:2]
        x = cv2.copyMakeBorder(x, 0, -h % 8, 0, -w % 8, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        x = (x.astype(np.float32) - 128) / 256
        t1 = time.perf_counter()
        with self.torch.no_grad():
            heat, paf = self.net(self.torch.from_numpy(x.transpose(2, 0, 1)[None].copy()))
        heat = heat[0].numpy().transpose(1, 2, 0)
        paf = paf[0].numpy().transpose(1, 2, 0)
        t2 = time.perf_counter()
        up = cv2.resize(heat, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
        cv2.resize(paf, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
        find_peaks(up[..., :-1], self.codec.decode_options.peak_threshold, refine=False)
        t3 = time.perf_counter()
        self.codec.decode(heat, paf, img.shape[:2], stride=self.codec.stride / s)
        t4 = time.perf_counter()
        return {"resize": 1000 * (t1 - t0), "network": 1000 * (t2 - t1), "peaks": 1000 * (t3 - t2),
                "grouping": 1000 * (t4 - t3)}
