"""SNMF solver behaviour beyond the goldens (inits, stopping, errors), hierarchical SNMF, baselines, steering
calibration and feature reading, on tiny synthetic data."""
import numpy as np
import pytest

from flaxzoo.interpret import baselines, features, hierarchical, snmf, steering
from flaxzoo.validate import InputError


def _planted(d=32, n=300, k=4, seed=0):
    """A = Z Y + noise with Z sparse signed (d, k) and Y >= 0: the model SNMF assumes."""
    rng = np.random.default_rng(seed)
    Z = np.zeros((d, k))
    for i in range(k):
        rows = rng.choice(d, 4, replace=False)
        Z[rows, i] = rng.standard_normal(4) * 3
    Y = rng.exponential(size=(k, n))
    return (Z @ Y + 0.01 * rng.standard_normal((d, n))).astype(np.float32), Z, Y


@pytest.mark.parametrize("init", ["random", "svd", "kmeans"])
def test_inits_fit_a_planted_factorisation(init):
    A, _, _ = _planted()
    result = snmf.fit(A, 4, sparsity=0.125, max_iter=150, patience=200, init=init, seed=1)
    assert np.all(result.Y >= 0)
    assert np.all((result.Z != 0).sum(0) <= snmf.kept_per_feature(0.125, 32))  # WTA: 4 neurons per feature
    assert result.loss == result.losses.min() and result.loss <= result.losses[0]
    assert result.relative_error(A) < 0.35  # a rank-0 fit is 1.0; WTA local optima keep random starts above 0.2


def test_seeded_random_init_is_deterministic_and_seed_matters():
    A, _, _ = _planted()
    a, b = (snmf.fit(A, 4, sparsity=0.25, max_iter=5, seed=3) for _ in range(2))
    c = snmf.fit(A, 4, sparsity=0.25, max_iter=5, seed=4)
    np.testing.assert_array_equal(a.Z, b.Z)
    assert not np.allclose(a.Z, c.Z)


def test_patience_stops_early_and_keeps_the_best():
    A, _, _ = _planted()
    result = snmf.fit(A, 4, sparsity=0.25, max_iter=400, patience=5, tol=0.5, chunk=50)
    assert result.n_iter < 400 and len(result.losses) == result.n_iter
    np.testing.assert_allclose(result.loss, result.losses.min())


def test_user_errors_are_clear():
    A, _, _ = _planted()
    with pytest.raises(InputError, match="2-D array"):
        snmf.fit(A[0], 2)
    with pytest.raises(InputError, match="more than the n = 3 tokens"):
        snmf.fit(A[:, :3], 4)
    with pytest.raises(InputError, match="kept fraction"):
        snmf.fit(A, 2, sparsity=0)
    with pytest.raises(InputError, match=">= 0"):
        snmf.fit(A, 2, Y0=-np.ones((2, A.shape[1])))
    with pytest.raises(InputError, match="x64 is off"):
        snmf.fit(A.astype(np.float64), 2)
    with pytest.raises(InputError, match="init must be one of"):
        snmf.fit(A, 2, init="nmf")


@pytest.mark.slow  # ~11 s: three compiles (two fits, the Adam chain)
def test_hierarchical_tree_and_finetune():
    A, _, _ = _planted(k=6)
    tree = hierarchical.fit(A, (6, 3), sparsity=0.25, max_iter=60, patience=100, finetune_steps=60, lr=1e-2)
    assert [f.shape for f in tree.features] == [(32, 6), (32, 3)] and tree.mixing[0].shape == (3, 6)
    assert np.all(tree.mixing[0] >= 0) and np.all(tree.Y >= 0)
    assert tree.finetune_losses[-1] < tree.finetune_losses[0]
    children = tree.children(1)
    assert sorted(i for c in children.values() for i in c) >= list(range(6))  # every fine feature has a parent
    np.testing.assert_allclose(tree.features[0], tree.features[1] @ tree.mixing[0], rtol=1e-4, atol=1e-4)
    assert tree.tree()["ranks"] == [6, 3]
    with pytest.raises(InputError, match="strictly decreasing"):
        hierarchical.fit(A, (3, 3))


def test_diffmeans_recovers_a_planted_class_direction_and_pca_is_orthonormal():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    offsets = rng.standard_normal((16, 3))
    A = (offsets[:, labels] + 0.1 * rng.standard_normal((16, 600))).astype(np.float32)
    D = baselines.diffmeans(A, labels, 3)
    for c in range(3):
        want = offsets[:, c] - np.delete(offsets, c, 1).mean(1)
        assert np.dot(D[:, c], want) / np.linalg.norm(D[:, c]) / np.linalg.norm(want) > 0.95
    P = baselines.pca(A, 2)
    np.testing.assert_allclose(P.T @ P, np.eye(2), atol=1e-5)
    with pytest.raises(InputError, match="one class per token"):
        baselines.diffmeans(A, labels[:5], 3)


@pytest.mark.slow  # ~8 s: the optax training scan compiles
def test_topk_sae_learns_and_keeps_unit_decoder():
    A, _, _ = _planted(d=16, n=400)
    sae = baselines.train_topk_sae(A, latents=8, k=2, steps=150, batch_size=64, lr=1e-2)
    assert sae.losses[-10:].mean() < 0.5 * sae.losses[:10].mean()
    np.testing.assert_allclose(np.linalg.norm(sae.W_dec, axis=1), 1.0, rtol=1e-5)
    codes = sae.encode(A)
    assert codes.shape == (8, 400) and np.all((codes > 0).sum(0) <= 2)


@pytest.mark.parametrize("sign", [1, -1])
def test_calibration_hits_the_target_kl_for_both_signs(sign):
    calls = []

    def kl_at(alpha):
        calls.append(alpha)
        return 0.01 * alpha ** 2

    cal = steering.calibrate(kl_at, 0.25, sign=sign, rtol=0.02)
    assert cal.hit and abs(cal.kl - 0.25) <= 0.005 and np.sign(cal.alpha) == sign
    assert all(np.sign(a) == sign for a in calls)
    unreachable = steering.calibrate(lambda a: 1e-9, 0.1, alpha_max=100)
    assert not unreachable.hit


def test_kl_divergence():
    logits = np.random.default_rng(0).standard_normal((3, 5))
    assert steering.kl_divergence(logits, logits) == pytest.approx(0, abs=1e-7)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    q_logits = logits[::-1]
    q = np.exp(q_logits) / np.exp(q_logits).sum(-1, keepdims=True)
    want = np.mean(np.sum(p * np.log(p / q), -1))
    assert steering.kl_divergence(logits, q_logits) == pytest.approx(want, rel=1e-5)


def test_feature_reading_helpers():
    Y = np.array([[0.0, 3.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.5]])
    assert list(features.top_tokens(Y, 0, 3)) == [1, 3, 2]
    assert list(features.top_tokens(Y, 1, 3)) == [3]  # zeros are not "activating"
    ids = np.arange(40)[None]
    ctx = features.text_context(ids, 0, 20, lambda s: ",".join(map(str, s)), window=2)
    assert ctx == {"left": "18,19", "token": "20", "right": "21,22"}
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 1))
    grid = features.patch_grid(images, np.array([[0, 0, 4, 4], [8, 8, 16, 16]]), np.array([0, 1]), cell=20,
                               columns=2)
    assert grid.size == (40, 20)
    promoted, suppressed = features.top_outputs(np.array([0.1, -2.0, 3.0]), 2)
    assert promoted == [2, 0] and suppressed == [1, 0]


def test_auroc_detection_scores_and_characteristic_tokens():
    from flaxzoo.interpret import evaluation

    assert evaluation.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert evaluation.auroc([1, 1, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.5)  # ties count half
    # two examples of 2 tokens; direction e0 fires on example 1's second token only
    A = np.array([[0.0, 0.1, 0.0, 5.0], [1.0, 1.0, 1.0, 0.0]])
    scores = evaluation.example_scores(A, np.array([0, 0, 1, 1]), 2, np.eye(2))
    np.testing.assert_allclose(scores, [[np.cos(np.arctan(10)), 1.0], [1.0, 1.0]], rtol=1e-6)
    assert list(evaluation.best_directions(scores, np.array([0, 1]), 2)) == [1, 0]
    ids = np.array([[1, 1, 1, 2], [2, 3, 3, 3]])
    assert evaluation.characteristic_tokens(ids, np.array([0, 1]), 1, count=1, min_count=2)[0] == 3


def test_interpret_bench_usage_errors(capsys):
    from flaxzoo.scripts import interpret_bench

    assert interpret_bench.main([]) == 2
    assert "--vision-weights" in capsys.readouterr().err
    assert interpret_bench.main(["--solver-timing", "3072,20000"]) == 2
    assert "D,N,K,ITERS" in capsys.readouterr().err


def test_sample_continues_prompts_with_top_k_top_p():
    vocab = 6

    def fake_lm(seq, direction, alpha):  # prefers token (last + 1) % vocab, more strongly with larger alpha
        seq = np.asarray(seq)
        logits = np.zeros(seq.shape + (vocab,))
        np.put_along_axis(logits, ((seq + 1) % vocab)[..., None], 5.0 + alpha, -1)
        return logits

    prompts = np.array([[0, 1], [3, 4]])
    out = steering.sample(fake_lm, prompts, None, 10.0, new_tokens=4, top_k=3, top_p=0.3, seed=0)
    np.testing.assert_array_equal(out, [[0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2]])  # top-p 0.3 keeps only the best
    loose = steering.sample(fake_lm, prompts, None, -5.0, new_tokens=30, top_k=2, top_p=1.0, seed=1)
    assert len(np.unique(loose[:, 2:])) > 1  # flat logits: sampling, restricted to the top 2
