"""Domain classifier (PyTorch): which domain an image comes from (normal / dark / motion blur).

A compact CNN trained from scratch in minutes on a CPU (no ImageNet download). Training images are
made on the fly from any COCO-style image folder: each source image appears once per class, with
the effect at a random strength (dark factor, blur length) and, for blur, a random direction, so no
single strength is memorised. One softmax: the network outputs logits and the loss is
cross-entropy on logits (the reference applied softmax twice).

Two parts, combined as a product of experts ``softmax(w * log p_cnn + log p_mlp)``:

* a CNN on ``input_size`` (96) pixel crops at native resolution (blur stays visible), RGB with
  per-channel mean/std; training draws random crops, prediction averages the logits of a 2x2 grid
  of crops (:func:`grid_crops`);
* a small MLP on global image statistics (:func:`global_features`: luminance quantiles, and
  contrast-normalised gradient energy in four directions with its anisotropy, and the brightness of
  the pixels that are not clipped), which sees the whole image at once: a darkened photo has no
  bright region anywhere (a low-light capture none but its lamps), a motion-blurred one no sharp
  edge across the motion in any region.

Every choice (the CNN's best epoch, its weight ``w`` among :data:`CNN_WEIGHTS`) is made on a seeded
split of the *training* folder; a test folder is only scored. On the bundled sample no weight beats
the MLP alone on validation (the CNN reaches ~0.8 on 96-pixel crops), ties go to the smaller
weight, so ``w = 0``: the CNN is not run and the classifier costs ~1 ms per image.

Effects are applied at source resolution first.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import cv2
import numpy as np

from ..data.images import read_image
from ..files import atomic_path, write_json_atomic
from ..data.domains import EXPERT_DOMAINS, TRAIN_STRENGTH_RANGE, apply_effect, scale_brightness
from ..errors import DataError

CLASSES = EXPERT_DOMAINS
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _torch():
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return torch


@contextlib.contextmanager
def _one_thread(torch):
    """PyTorch on one intra-op thread inside the block: the statistics MLP's ops are tiny, and a
    pool of threads waits at each one for a descheduled peer (1500 full-batch Adam steps: 7x
    faster on one thread than on two on the 2-core machine here, same result)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def build_net(num_classes: int = len(CLASSES), width: int = 32):
    """Compact CNN: 5 conv-BN-ReLU blocks (stride 2 each) + global average and max pooling + linear.

    Input ``(B, 3, S, S)`` float, output ``(B, num_classes)`` logits.
    """
    torch = _torch()
    nn = torch.nn

    class DomainNet(nn.Module):
        def __init__(self):
            super().__init__()
            chans = [3, width, width * 2, width * 4, width * 4, width * 8]
            blocks = []
            for cin, cout in zip(chans[:-1], chans[1:]):
                blocks += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                           nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            self.features = nn.Sequential(*blocks)
            self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(2 * chans[-1], num_classes))

        def forward(self, x):
            f = self.features(x)
            return self.head(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))

    return DomainNet()


def build_backbone_net(name: str, num_classes: int = len(CLASSES), weights: str | Path | None = None):
    """A torchvision classification network as the crop CNN (optional; torchvision is not a
    requirement of this project).

    Args:
        name: a ``torchvision.models.get_model`` name (``resnet18``, ``resnet50``,
            ``mobilenet_v3_small``, ``efficientnet_b0``, ...).
        weights: a state-dict file of that network as torchvision publishes it (e.g. ImageNet
            ``resnet50-0676ba61.pth``, downloaded by the user; nothing is downloaded here), loaded
            strictly before the last linear layer is replaced by a ``num_classes`` one.
    Returns:
        the network: input ``(B, 3, S, S)`` ImageNet-normalised RGB (as :func:`normalise`), output
        ``(B, num_classes)`` logits.
    Raises:
        DataError: torchvision missing or unusable, unknown name, missing or mismatched weights file.
    """
    torch = _torch()
    try:
        import torchvision
    except Exception as e:  # ImportError, or a torchvision built for another torch
        raise DataError(f"--backbone {name}: torchvision does not import ({type(e).__name__}: {e}); install the "
                        f"torchvision build that matches torch {torch.__version__}") from None
    try:
        net = torchvision.models.get_model(name, weights=None)
    except Exception as e:
        raise DataError(f"--backbone {name!r}: not a torchvision model ({e})") from None
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise DataError(f"{weights}: backbone weights file not found")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except Exception as e:
            raise DataError(f"{weights}: not {name} weights ({type(e).__name__}: {str(e)[:200]})") from None
    # replace the last linear layer (the ImageNet head) by one for our classes
    last = [(n, m) for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)]
    if not last:
        raise DataError(f"--backbone {name!r}: no linear classification head to replace")
    path, lin = last[-1]
    parent = net
    *parents, leaf = path.split(".")
    for p in parents:
        parent = getattr(parent, p)
    setattr(parent, leaf, torch.nn.Linear(lin.in_features, num_classes))
    return net


def normalise(patch: np.ndarray) -> np.ndarray:
    """BGR uint8 ``(S, S, 3)`` -> float32 ``(3, S, S)`` RGB, per-channel mean/std normalised."""
    return ((patch[..., ::-1].astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)


def grid_crops(image: np.ndarray, size: int, n: int = 3) -> np.ndarray:
    """``n x n`` crops of ``size`` pixels at native resolution, evenly spread over the image (the
    image is zero-padded when smaller) -> ``(n*n, 3, size, size)``. Native resolution keeps blur
    visible; several crops keep darkness from hinging on one dark region."""
    h, w = image.shape[:2]
    if h < size or w < size:
        pad = np.zeros((max(h, size), max(w, size), 3), np.uint8)
        pad[:h, :w] = image
        image, h, w = pad, max(h, size), max(w, size)
    ys = np.linspace(0, h - size, n).astype(int)
    xs = np.linspace(0, w - size, n).astype(int)
    return np.stack([normalise(image[y:y + size, x:x + size]) for y in ys for x in xs])


def _hist_quantiles(hist: np.ndarray, qs) -> np.ndarray:
    """Quantiles (fractions in [0, 1]) of integer values from their histogram: the smallest value
    whose cumulative count reaches ``q * total``."""
    c = np.cumsum(hist)
    return np.searchsorted(c, np.asarray(qs) * c[-1], side="left").astype(np.float64)


def global_features(image: np.ndarray) -> np.ndarray:
    """Global statistics of a BGR uint8 image, float32 ``(31,)``.

    * Brightness, in [0, 1]: luminance quantiles (1, 10, 50, 90, 99, 99.5, 99.9, 100 %), the
      99.9 % quantile of each colour channel, the mean luminance. Darkening by ``f`` caps every
      value at ``255 f``; natural photos nearly always hold a few near-white pixels.
    * Sharpness, divided by the contrast (99 % - 1 % luminance) so that it does not follow the
      brightness: log mean and log 99th percentile of the absolute differences between
      neighbouring pixels along x, y and both diagonals; log anisotropy (max / min over the four
      directions) of both, which a linear motion blur raises; log 99th percentile and log mean of
      the absolute Laplacian; and the log contrast.
    * Brightness without the clipped pixels (luminance >= 250: lamps, windows, sky), which a
      low-light capture keeps at full brightness: their share, the 10, 50, 90 and 99 % quantiles
      and the mean of the other pixels' luminance, in [0, 1]. The first 25 features come first
      (checkpoints trained on them read ``[:25]``).

    Differences are taken between native-resolution neighbours (blur is a native-resolution
    property; down-scaling first hides short blurs), but only at every other row and column:
    a quarter of the pixels estimate the same statistics ~4x faster. All quantiles come from
    integer histograms (linear time).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"classifier: expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    hist = cv2.calcHist([g], [0], None, [256], [0, 256]).ravel()
    lq = _hist_quantiles(hist, [0.01, 0.10, 0.50, 0.90, 0.99, 0.995, 0.999, 1.0])
    cq = [_hist_quantiles(cv2.calcHist([image], [k], None, [256], [0, 256]).ravel(), [0.999])[0] for k in range(3)]
    q = np.concatenate([lq, cq]) / 255.0
    contrast = max(lq[4] - lq[0], 1.0)
    h2, w2 = (g.shape[0] - 1) // 2 * 2, (g.shape[1] - 1) // 2 * 2
    c = np.ascontiguousarray
    a, right = c(g[0:h2:2, 0:w2:2]), c(g[0:h2:2, 1:w2 + 1:2])
    down, diag = c(g[1:h2 + 1:2, 0:w2:2]), c(g[1:h2 + 1:2, 1:w2 + 1:2])
    hs = [cv2.calcHist([cv2.absdiff(u, v)], [0], None, [256], [0, 256]).ravel()
          for u, v in ((right, a), (down, a), (diag, a), (down, right))]
    levels = np.arange(256)
    e = np.array([(h * levels).sum() / max(h.sum(), 1) for h in hs]) / contrast + 1e-6
    t = np.array([_hist_quantiles(h, [0.99])[0] for h in hs]) / contrast + 1e-6
    lap = np.abs(cv2.Laplacian(g, cv2.CV_16S)[::2, ::2]).astype(np.uint16)
    lh = np.bincount(lap.ravel()).astype(np.float64)
    lap99 = _hist_quantiles(lh, [0.99])[0] / contrast
    lapm = (lh * np.arange(len(lh))).sum() / max(lh.sum(), 1) / contrast
    lit = hist[:250]
    unclipped = np.concatenate([_hist_quantiles(lit, [0.10, 0.50, 0.90, 0.99]),
                                [(lit * levels[:250]).sum() / max(lit.sum(), 1)]]) / 255.0
    return np.concatenate([q, [g.mean() / 255.0], np.log(e), np.log(t),
                           [np.log(e.max() / e.min()), np.log(t.max() / t.min()),
                            np.log(lap99 + 1e-6), np.log(lapm + 1e-6), np.log(contrast / 255.0)],
                           [hist[250:].sum() / max(hist.sum(), 1)], unclipped]).astype(np.float32)


def build_feature_net(num_features: int = 31, num_classes: int = len(CLASSES)):
    """MLP on standardised :func:`global_features`: 31 -> 64 -> classes (logits)."""
    torch = _torch()
    return torch.nn.Sequential(torch.nn.Linear(num_features, 64), torch.nn.ReLU(), torch.nn.Linear(64, num_classes))


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    from ..data.images import IMAGE_EXT  # the one list of readable types
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT)
    if not files:
        raise DataError(f"{folder}: no images (.jpg, .png) in the folder")
    return files


def _effect_sample(img, cls, rng, strengths=None, dark_lights: float = 0.0):
    """Apply class ``cls``'s effect: random strength/direction, or fixed ``strengths[cls]``; a
    ``dark_lights`` share of the dark ones are :func:`random_low_light` captures instead."""
    name = CLASSES[cls]
    if name == "normal":
        return img
    if strengths is not None:
        s = strengths[name]
    else:
        lo, hi = TRAIN_STRENGTH_RANGE[name]
        s = rng.uniform(lo, hi)
    angle = rng.uniform(0, 180) if name == "motion_blur" else 0.0
    if name == "dark" and dark_lights > 0 and rng.uniform() < dark_lights:
        # a ``dark_lights`` share of the dark images are low-light captures (see train_classifier)
        return random_low_light(img, rng)
    return apply_effect(img, name, s, angle)


#: Log-uniform ranges of the low-light captures among the dark class's training images
#: (:func:`random_low_light`): exposure in linear light (0.03-0.5 scales mid-tone sRGB values by
#: ~0.23-0.75, the dark factors' range), the sensor noise of
#: :func:`keras_openpose.data.domains.low_light` (its defaults 0.01 and 0.002 inside) and the JPEG
#: quality (integers, both ends included).
LOW_LIGHT_TRAIN_RANGE = {"exposure": (0.03, 0.5), "shot_noise": (0.003, 0.03), "read_noise": (0.0005, 0.005),
                         "jpeg_quality": (60, 95)}


def random_low_light(img: np.ndarray, rng) -> np.ndarray:
    """A :func:`keras_openpose.data.domains.low_light` capture at a random exposure, noise and JPEG
    quality (:data:`LOW_LIGHT_TRAIN_RANGE`), with the source's clipped pixels (lamps) kept clipped
    in half of the draws."""
    from ..data.domains import low_light
    r = LOW_LIGHT_TRAIN_RANGE

    def draw(key):
        lo, hi = r[key]
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    keep = bool(rng.uniform() < 0.5)
    q_lo, q_hi = r["jpeg_quality"]
    return low_light(img, draw("exposure"), rng, shot_noise=draw("shot_noise"), read_noise=draw("read_noise"),
                     keep_highlights=keep, jpeg_quality=int(rng.integers(q_lo, q_hi + 1)))


def make_set(images: list[np.ndarray], size: int, rng, strengths=None, crops_per_image: int = 4,
             dark_lights: float = 0.0):
    """Training/validation crops: each image once per class per crop. The effect is applied to a
    region with a margin around the crop (so a blur sees real neighbours), then the crop is cut.

    Returns:
        ``(X (N, 3, size, size) float32, y (N,) int64)``.
    """
    xs, ys = [], []
    margin = 32
    for img in images:
        h, w = img.shape[:2]
        for _ in range(crops_per_image):
            for c in range(len(CLASSES)):
                rs = size + 2 * margin
                y0 = int(rng.integers(0, max(1, h - rs + 1)))
                x0 = int(rng.integers(0, max(1, w - rs + 1)))
                region = img[y0:y0 + rs, x0:x0 + rs]
                if rng.uniform() < 0.5:
                    region = region[:, ::-1]
                region = _effect_sample(np.ascontiguousarray(region), c, rng, strengths, dark_lights)
                rh, rw = region.shape[:2]
                cy, cx = max(0, (rh - size) // 2), max(0, (rw - size) // 2)
                patch = np.zeros((size, size, 3), np.uint8)
                cut = region[cy:cy + size, cx:cx + size]
                patch[:cut.shape[0], :cut.shape[1]] = cut
                xs.append(normalise(patch))
                ys.append(c)
    return np.stack(xs), np.array(ys, np.int64)


#: Weights of the crop CNN's log-probabilities in the product with the statistics MLP, tried after
#: training; the one with the best accuracy on the validation images (a split of the *training*
#: folder, never the test folder) is kept, ties going to the smaller weight. At weight 0 the CNN is
#: not run at all.
CNN_WEIGHTS = (0.0, 0.25, 0.5, 1.0)

#: Fixed strengths of the validation and test sets, different from any training draw's exact value
#: and including the reference defaults (0.5, 30 px).
VAL_STRENGTHS = ({"dark": 0.5, "motion_blur": 30.0}, {"dark": 0.35, "motion_blur": 15.0},
                 {"dark": 0.65, "motion_blur": 40.0})


def _split_files(files, val_fraction, rng):
    """Seeded split of a folder's files into (train, validation) lists."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * len(files)))
    if val_fraction > 0 and len(files) >= 2:
        n_val = min(max(1, n_val), len(files) - 1)
    perm = rng.permutation(len(files))
    return [files[i] for i in sorted(perm[n_val:])], [files[i] for i in sorted(perm[:n_val])]


#: Exposure range of the ``normal`` class when training the statistics MLP: photos of the normal
#: domain vary in exposure (auto-exposure, scene brightness), and without this the MLP learns from a
#: few dozen photos that any image dimmer than them is ``dark``. The range stays clear of the dark
#: class's training range (factors 0.25-0.75). Measured on the sample (64 training images, held-out
#: val2017): 0.9937-0.9958 without, 0.9958-0.9979 with (three seeds).
NORMAL_EXPOSURE_RANGE = (0.8, 1.25)

#: Side of the random crop (a fraction of the image's, same for height and width, native
#: resolution) that each image of each repetition is cut to before the effects when training the
#: statistics MLP: a crop of a photo is another scene, darker or brighter than the whole, so a few
#: dozen photos teach more of the natural range of brightness. Measured by 4-fold cross-validation
#: over train2017's 80 images (statistics MLP, dark_lights 0.3, mean of three seeds), without ->
#: with: held-out normal photos called normal 0.950 -> 0.975, random crops of them 0.92 -> 0.96,
#: all effects at VAL_STRENGTHS 0.982 -> 0.988, low-light captures with lamps kept (exposures
#: 0.05, 0.2) called dark 0.96 / 0.92 -> 0.99 / 0.95.
TRAIN_CROP_RANGE = (0.5, 1.0)


def _random_crop(img, rng, side):
    h, w = img.shape[:2]
    s = rng.uniform(*side)
    ch, cw = max(16, int(h * s)), max(16, int(w * s))
    y, x = int(rng.integers(0, max(1, h - ch + 1))), int(rng.integers(0, max(1, w - cw + 1)))
    return np.ascontiguousarray(img[y:y + ch, x:x + cw])


def _synthesize(images, rng, strengths_sets, exposure=None, dark_lights: float = 0.0, crop=None):
    """Each image once per class per strength set: ``[(class, image with the effect)]``; with
    ``exposure = (lo, hi)`` the normal class is re-exposed by a factor drawn from that range; with
    ``crop = (lo, hi)`` each image is first cut to a random crop (:data:`TRAIN_CROP_RANGE`), one
    for all its classes."""
    pairs = []
    for s in strengths_sets:
        for img in images:
            if crop is not None:
                img = _random_crop(img, rng, crop)
            for c in range(len(CLASSES)):
                if exposure is not None and CLASSES[c] == "normal":
                    pairs.append((c, scale_brightness(img, rng.uniform(*exposure))))
                else:
                    pairs.append((c, _effect_sample(img, c, rng, s, dark_lights)))
    return pairs


def train_classifier(train_dir, test_dir, out: str | Path, epochs: int = 10, input_size: int = 96,
                     batch_size: int = 32, lr: float = 2e-3, seed: int = 0, max_images: int | None = None,
                     progress: bool = True, feature_reps: int = 6, val_fraction: float = 0.2,
                     backbone: str | None = None, backbone_weights: str | Path | None = None,
                     dark_lights: float = 0.0) -> dict:
    """Train the classifier (CNN + statistics MLP) from an image folder.

    ``train_dir`` is split (seeded) into training images and ``val_fraction`` validation images.
    The validation images choose the CNN's best epoch and its weight in the product
    (:data:`CNN_WEIGHTS`); ``test_dir`` (optional) is only scored at the end, so its accuracy is a
    held-out figure: images never trained on or chosen with, effects at :data:`VAL_STRENGTHS`.

    Args:
        train_dir: folder of images (any COCO split folder); effects are applied on the fly.
        test_dir: folder of held-out images, or ``None``.
        dark_lights: share of the dark class's training images (CNN crops and MLP images) that
            are low-light captures (:func:`random_low_light`: random exposure, sensor noise and
            JPEG quality, the source's clipped pixels kept clipped in half, as lamps are at night)
            instead of the reference's darkening; with it > 0 the CNN weight is also chosen on
            low-light captures of the validation images. 0 (default): darkening only. Chosen by
            4-fold cross-validation on train2017 (0, 0.3, 0.5, 0.7: 0.5 and 0.7 send more held-out
            normal photos to dark for no gain on low light): 0.3 (configs/quickstart.yaml).
            Measured on the sample (trained on train2017 as the quickstart, scored on val2017;
            "lamps" = :func:`keras_openpose.data.domains.low_light` at exposures 0.05 / 0.2 with the
            clipped pixels kept): at 0, effects at VAL_STRENGTHS 1.000 and captures called dark
            21 % / 10 % with lamps, 100 % without; at 0.3, 0.9958 and 94 % / 94 % with lamps, 100 %
            without.
        backbone, backbone_weights: a torchvision network and its weights file as the crop CNN
            instead of the compact one (:func:`build_backbone_net`).
        out: the ``.pt`` file (written atomically): ``{"state_dict", "classes", "input_size",
            "width", "epoch", "cnn_weight", "feature_state_dict", "feature_mean", "feature_std", ...}``;
            a ``.json`` log with per-epoch figures sits beside it.
    Returns:
        ``{"test_accuracy", "confusion", "val_accuracy", "cnn_weight", "cnn_weight_selection",
        "best_epoch", "history", ...}`` (``test_*`` only with ``test_dir``).
    Raises:
        DataError: missing folder, no images, unreadable image, bad ``val_fraction``.
    """
    torch = _torch()
    from tqdm import tqdm
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tr_files, val_files = _split_files(list_images(train_dir)[:max_images], val_fraction, rng)
    train_imgs, val_imgs = [read_image(p) for p in tr_files], [read_image(p) for p in val_files]
    if not val_imgs:
        raise DataError(f"{train_dir}: too few images to hold some out for validation")
    val = [make_set(val_imgs, input_size, rng, s, crops_per_image=2) for s in VAL_STRENGTHS]
    Xv, yv = np.concatenate([v[0] for v in val]), np.concatenate([v[1] for v in val])
    net = build_net() if backbone is None else build_backbone_net(backbone, weights=backbone_weights)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * (-(-len(train_imgs) * 3 * 4 // batch_size)))
    loss_fn = torch.nn.CrossEntropyLoss()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    best, history, best_state = (-1.0, -1), [], None
    for ep in tqdm(range(epochs), desc="domain classifier CNN", disable=not progress):
        t0 = time.perf_counter()
        X, y = make_set(train_imgs, input_size, rng, dark_lights=dark_lights)
        perm = rng.permutation(len(y))
        net.train()
        tot = 0.0
        for k in range(0, len(y), batch_size):
            idx = perm[k:k + batch_size]
            xb, yb = torch.from_numpy(X[idx]), torch.from_numpy(y[idx])
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
        acc, _ = _evaluate(net, Xv, yv)
        history.append({"epoch": ep + 1, "train_loss": tot / len(y), "val_accuracy_crops": acc,
                        "seconds": time.perf_counter() - t0})
        if acc > best[0]:
            best = (acc, ep + 1)
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()

    # global-statistics MLP, trained on whole images with effects at random strengths
    def statistics(images):
        pairs = [p for r in range(feature_reps)
                 for p in _synthesize(images, rng, [None], NORMAL_EXPOSURE_RANGE if r else None, dark_lights,
                                      TRAIN_CROP_RANGE)]
        X = np.stack([global_features(im) for _, im in tqdm(pairs, desc="image statistics", disable=not progress)])
        return X, np.array([c for c, _ in pairs], np.int64)

    Xf, yf = statistics(train_imgs)
    fnet, mu, sd = _fit_feature_net(Xf, yf)
    ck = {"state_dict": net.state_dict(), "classes": list(CLASSES), "input_size": input_size, "width": 32,
          "backbone": backbone,
          "epoch": best[1], "feature_state_dict": fnet.state_dict(), "feature_mean": mu.tolist(),
          "feature_std": sd.tolist(), "cnn_weight": 0.0}
    # the CNN's weight in the product, chosen on the validation images (whole images, fixed strengths)
    clf = DomainClassifier.from_checkpoint(ck)
    vpairs = _synthesize(val_imgs, rng, VAL_STRENGTHS)
    if dark_lights > 0:     # trained for low-light captures: the choice sees them too, labelled dark
        from ..data.domains import low_light
        vpairs += [(CLASSES.index("dark"), low_light(im, e, rng, keep_highlights=k))
                   for im in val_imgs for e, k in LOW_LIGHT_VARIANTS]
    lc, lf = clf.log_probabilities([im for _, im in vpairs])
    vy = np.array([c for c, _ in vpairs])
    selection = {w: float(((w * lc + lf).argmax(1) == vy).mean()) for w in CNN_WEIGHTS}
    cnn_weight = max(CNN_WEIGHTS, key=lambda w: (selection[w], -w))
    ck["cnn_weight"] = cnn_weight
    # the choice made, the MLP (which has nothing chosen on validation) is refitted on every --train image
    Xa, ya = statistics(val_imgs)
    fnet, mu, sd = _fit_feature_net(np.concatenate([Xf, Xa]), np.concatenate([yf, ya]))
    ck.update({"feature_state_dict": fnet.state_dict(), "feature_mean": mu.tolist(), "feature_std": sd.tolist()})
    with atomic_path(out) as tmp:
        torch.save(ck, tmp)
    log = {"val_accuracy": selection[cnn_weight], "cnn_weight": cnn_weight, "mlp_refit_on_all_train": True,
           "dark_lights": dark_lights,
           "cnn_weight_selection": {str(w): a for w, a in selection.items()},
           "val_accuracy_crops": best[0], "best_epoch": best[1], "history": history,
           "val_strengths": list(VAL_STRENGTHS), "train_images": [p.name for p in tr_files],
           "val_images": [p.name for p in val_files]}
    if test_dir is not None:
        test = validate(out, test_dir, "synthesize", max_images=max_images, progress=progress)
        log["test_accuracy"] = test["accuracy"]
        log["confusion"] = test["confusion"]
        log["test_images"] = len(test["predictions"]) // (len(CLASSES) * len(VAL_STRENGTHS))
    write_json_atomic(log, out.with_suffix(".json"))
    return log


def _fit_feature_net(X, y, steps: int = 1500):
    """Full-batch Adam on standardised statistics ``X (N, F)``: ``(mlp, mean, std)``."""
    torch = _torch()
    mu, sd = X.mean(0), X.std(0) + 1e-6
    fnet = build_feature_net(X.shape[1])
    opt = torch.optim.Adam(fnet.parameters(), 1e-2, weight_decay=1e-3)
    Xt, yt = torch.from_numpy(((X - mu) / sd).astype(np.float32)), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    with _one_thread(torch):
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(fnet(Xt), yt).backward()
            opt.step()
    fnet.eval()
    return fnet, mu, sd


def _evaluate(net, X, y, batch=64):
    torch = _torch()
    net.eval()
    probs = []
    with torch.no_grad():
        for k in range(0, len(X), batch):
            probs.append(torch.softmax(net(torch.from_numpy(X[k:k + batch])), 1).numpy())
    p = np.concatenate(probs)
    return float((p.argmax(1) == y).mean()), p


class DomainClassifier:
    """A trained classifier: ``probabilities(image) -> {"normal": p, "dark": p, "motion_blur": p}``.

    The product of experts ``softmax(w * log p_cnn + log p_mlp)`` with ``w`` the checkpoint's
    ``cnn_weight`` (the CNN is skipped when ``w == 0``).

    Raises:
        DataError: missing or malformed weights file.
    """

    def __init__(self, path: str | Path):
        torch = _torch()
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: classifier weights not found")
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
            self._load(ck)
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"{path}: not a classifier checkpoint ({type(e).__name__}: {e})") from None

    @classmethod
    def from_checkpoint(cls, ck: dict) -> "DomainClassifier":
        """A classifier from an in-memory checkpoint dict (as written by :func:`train_classifier`)."""
        self = cls.__new__(cls)
        self._load(ck)
        return self

    def _load(self, ck):
        self.classes = tuple(ck["classes"])
        self.input_size = int(ck["input_size"])
        self.cnn_weight = float(ck.get("cnn_weight", 0.5))
        bb = ck.get("backbone")
        self.net = build_net(len(self.classes), ck.get("width", 32)) if not bb else build_backbone_net(bb, len(self.classes))
        self.net.load_state_dict(ck["state_dict"])
        self.net.eval()
        self.fnet = None
        if "feature_state_dict" in ck:
            self.fmean = np.array(ck["feature_mean"], np.float32)
            self.fstd = np.array(ck["feature_std"], np.float32)
            self.fnet = build_feature_net(len(self.fmean), len(self.classes))
            self.fnet.load_state_dict(ck["feature_state_dict"])
            self.fnet.eval()
        self.seconds = 0.0

    def log_probabilities(self, images: list[np.ndarray], cnn: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Both parts' log-probabilities ``(N, C)``: the CNN's (mean logits of a 2x2 grid of
        native-resolution crops; zeros with ``cnn=False``, which skips it) and the statistics
        MLP's (zeros when the checkpoint has none)."""
        torch = _torch()
        n, C = len(images), len(self.classes)
        lc, lf = np.zeros((n, C), np.float32), np.zeros((n, C), np.float32)
        with torch.no_grad():
            if cnn:
                x = torch.from_numpy(np.concatenate([grid_crops(im, self.input_size, 2) for im in images]))
                lc = torch.log_softmax(self.net(x).reshape(n, -1, C).mean(1), 1).numpy()
            if self.fnet is not None:
                f = np.stack([(global_features(im)[:len(self.fmean)] - self.fmean) / self.fstd for im in images])
                lf = torch.log_softmax(self.fnet(torch.from_numpy(f.astype(np.float32))), 1).numpy()
        return lc, lf

    def probabilities_batch(self, images: list[np.ndarray]) -> np.ndarray:
        """``(N, C)`` probabilities of BGR uint8 ``(H, W, 3)`` images, classes in ``self.classes`` order."""
        t0 = time.perf_counter()
        w = self.cnn_weight if self.fnet is not None else 1.0
        lc, lf = self.log_probabilities(images, cnn=w > 0)
        logp = w * lc + lf
        p = np.exp(logp - logp.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        self.seconds += time.perf_counter() - t0
        return p

    def probabilities(self, image: np.ndarray) -> dict:
        """``{class: probability}`` of one BGR uint8 ``(H, W, 3)`` image."""
        p = self.probabilities_batch([image])[0]
        return {c: float(v) for c, v in zip(self.classes, p)}


#: Low-light variants of :func:`validate`'s ``labels="low_light"``: (exposure, keep_highlights).
LOW_LIGHT_VARIANTS = ((0.05, False), (0.2, False), (0.05, True), (0.2, True))


def validate(weights, images_dir, labels: str | None = None, strengths=None, seed: int = 0,
             max_images: int | None = None, progress: bool = False) -> dict:
    """Classify every image of a folder.

    Args:
        labels: ``None`` (unlabelled: the folder as it is), a class name (every image is of that
            domain), ``"synthesize"``: each image is classified once per class after applying
            that class's effect at ``strengths`` (default: every set of :data:`VAL_STRENGTHS`), or
            ``"low_light"``: each image as a simulated low-light capture
            (:func:`keras_openpose.data.domains.low_light`, :data:`LOW_LIGHT_VARIANTS`), labelled dark.
    Returns:
        ``{"predictions": [{"image", "probabilities", ["label", "variant"]}], "skipped": [lines],
        "accuracy", "confusion", ["accuracy_by_variant"]}`` (accuracy and the confusion matrix,
        rows = true class, only with labels); unreadable or tiny images are skipped and listed.
    Raises:
        DataError: unknown ``labels``, missing folder or weights.
    """
    from tqdm import tqdm

    from ..data.domains import low_light
    clf = DomainClassifier(weights)
    if labels not in (None, "synthesize", "low_light") and labels not in clf.classes:
        raise DataError(f"--labels {labels!r}: use one of {', '.join(clf.classes)}, synthesize or low_light")
    files = list_images(images_dir)[:max_images]
    rng = np.random.default_rng(seed)
    preds, y_true, y_pred, names = [], [], [], []
    sets = strengths if strengths is not None else VAL_STRENGTHS
    dark = clf.classes.index("dark") if "dark" in clf.classes else None
    skipped = []
    for f in tqdm(files, desc=f"classify {Path(images_dir).name}", disable=not progress):
        try:
            img = read_image(f)                      # the one reader: truncated files are refused
        except DataError as e:
            img, why = None, str(e)
        if img is None or min(img.shape[:2]) < 16:   # skipped and listed; the folder goes on
            skipped.append(why if img is None else f"{f}: too small ({img.shape[1]}x{img.shape[0]})")
            continue
        if labels == "synthesize":
            variants = [(c, f"{clf.classes[c]}" + ("" if clf.classes[c] == "normal" else f"@{s[clf.classes[c]]:g}"),
                         _effect_sample(img, c, rng, s)) for s in sets for c in range(len(clf.classes))]
        elif labels == "low_light":
            variants = [(dark, f"low_light@{e:g}" + ("+lights" if k else ""), low_light(img, e, rng, keep_highlights=k))
                        for e, k in LOW_LIGHT_VARIANTS]
        else:
            variants = [(None if labels is None else clf.classes.index(labels), None, img)]
        probs = clf.probabilities_batch([v for _, _, v in variants])
        for (c, name, _), p in zip(variants, probs):
            rec = {"image": f.name, "probabilities": {k: float(v) for k, v in zip(clf.classes, p)}}
            if c is not None:
                rec["label"] = clf.classes[c]
                y_true.append(c)
                y_pred.append(int(np.argmax(p)))
                names.append(name)
            if name is not None:
                rec["variant"] = name
            preds.append(rec)
    out = {"predictions": preds, "skipped": skipped}
    if y_true:
        cm = np.zeros((len(clf.classes),) * 2, int)
        for t, p in zip(y_true, y_pred):
            cm[t, p] += 1
        out["accuracy"] = float(np.trace(cm) / cm.sum())
        out["confusion"] = {"classes": list(clf.classes), "matrix": cm.tolist()}
        if labels in ("synthesize", "low_light"):
            ok = np.array(y_true) == np.array(y_pred)
            out["accuracy_by_variant"] = {v: float(ok[[n == v for n in names]].mean()) for v in dict.fromkeys(names)}
    return out
