"""Video tracking: stable ids on a synthetic clip with known ids, One-Euro smoothing."""
import numpy as np

from keras_openpose.inference.tracking import OneEuroFilter, PoseTracker


def _clip(val_split, frames=12, seed=0):
    """People (area >= 64^2 px) of one sample image moving 4 px right and 2 px down per frame, listed in
    a random order each frame, with 1 px detector jitter; person 1 is hidden in frames 5 and 6.
    Returns [(people, true ids)] per frame."""
    def big(a):
        return a["num_keypoints"] >= 8 and not a["iscrowd"] and a["area"] >= 64 * 64
    img = max(val_split.ids_with_people(), key=lambda i: sum(map(big, val_split.anns_by_image[i])))
    people = [a for a in val_split.anns_by_image[img] if big(a)][:4]
    assert len(people) >= 3
    rng = np.random.default_rng(seed)
    clip = []
    for t in range(frames):
        shown = [k for k in range(len(people)) if not (k == 1 and t in (5, 6))]
        rng.shuffle(shown)
        frame = []
        for k in shown:
            kp = np.asarray(people[k]["keypoints"], np.float64).reshape(-1, 3).copy()
            lab = kp[:, 2] > 0
            kp[lab, 0] += 4 * t
            kp[lab, 1] += 2 * t
            kp[lab, :2] += rng.normal(0, 1.0, (lab.sum(), 2))     # detector jitter
            kp[lab, 2] = 2
            frame.append({"keypoints": kp.reshape(-1).tolist(), "score": 1.0})
        clip.append((frame, shown))
    return clip


def test_ids_are_stable_through_motion_shuffling_and_a_short_gap(val_split):
    tracker = PoseTracker(max_gap=3)
    first = {}
    for t, (frame, truth) in enumerate(_clip(val_split)):
        out = tracker.update(frame)
        for person, k in zip(out, truth):
            first.setdefault(k, person["id"])
            assert person["id"] == first[k], (t, k)          # the same id all along, gap included
        assert len({p["id"] for p in out}) == len(out)       # never two people with one id
    assert sorted(first.values()) == list(range(1, len(first) + 1))


def test_a_person_gone_longer_than_the_gap_comes_back_with_a_new_id(val_split):
    tracker = PoseTracker(max_gap=1)
    ids = []
    for frame, truth in _clip(val_split):
        ids.append({k: p["id"] for p, k in zip(tracker.update(frame), truth)})
    assert ids[4][1] != ids[7][1] and ids[7][1] > max(ids[0].values())


def test_one_euro_smooths_a_still_point_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.05)
    still = [f(np.array([[100.0, 50.0]]) + rng.normal(0, 2, (1, 2)), np.array([True]))[0] for _ in range(200)]
    assert np.std(np.array(still)[50:], axis=0).max() < 0.5 * 2      # jitter at least halved
    g = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.05)
    moving = [g(np.array([[10.0 * t, 0.0]]), np.array([True]))[0, 0] for t in range(60)]
    assert 10 * 59 - moving[-1] < 15                                  # lags a fast point by < 1.5 frames
    # a keypoint missing in a frame passes through and does not disturb the state
    h = OneEuroFilter()
    h(np.array([[5.0, 5.0]]), np.array([True]))
    assert np.array_equal(h(np.array([[0.0, 0.0]]), np.array([False])), [[0.0, 0.0]]) and np.allclose(h.x, 5.0)
