"""One expert from an experiment, end to end: the cheap checks first (data sources, the run
folder's lock: seconds, before TensorFlow is imported), then :func:`keras_openpose.train.loop.train_expert`,
then the chief worker alone publishes the model (:func:`keras_openpose.model.networks.publish_model`).
"""
from __future__ import annotations

from pathlib import Path


def train_and_publish(cfg, stores, out, models_dir, resume: bool = True, init_from=None, init_vgg19=None):
    """Train the expert ``cfg.train.effect`` of experiment ``cfg`` into run folder ``out`` and publish
    it to ``models_dir`` (``pose_<domain>.keras`` + ``manifest.json``).

    Args:
        cfg: the :class:`~keras_openpose.config.ExperimentConfig`; ``stores``: training store path(s),
            comma-separated, or ``None`` (photos only); ``init_from``: a ``.keras`` network to start
            from; ``init_vgg19``: ImageNet VGG-19 weights for the ``vgg19`` backbone.
    Returns:
        ``(final model path, published path)``; the published path is ``None`` on a worker that is
        not the chief (only the chief publishes).
    Raises:
        DataError: missing sources, a run folder in use by another run, or any error of the loop.
    """
    from ..data.pipeline import check_sources
    from ..files import OutputLock
    out = Path(out)
    check_sources(cfg.train, stores)                  # --store / --images / --distill-from, before any work
    if cfg.train.distribute != "multiworker":        # (other workers of a cluster share the chief's folder)
        with OutputLock(out / "run"):                 # "in use by another run" in a second, not after 13 s
            pass
    from ..model.networks import publish_model
    from .cluster import get_strategy, worker_info
    from .loop import train_expert
    final = train_expert(cfg, stores, out, resume=resume, init_from=init_from, init_vgg19=init_vgg19)
    if not worker_info(get_strategy(cfg.train.distribute))[2]:
        return final, None
    extra = {"config": cfg.model, "steps": cfg.train.steps, "run": str(out)}
    if cfg.train.distill_from:
        extra["distill_from"] = cfg.train.distill_from
    return final, publish_model(final, models_dir, cfg.train.effect, extra)
