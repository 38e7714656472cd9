"""Batch transforms (genae.data.transforms) and in-memory batching (genae.data.batches)."""

from __future__ import annotations

import itertools

import pytest
import torch

from genae.data.batches import epoch_batches, n_batches
from genae.data.transforms import (QUADRANTS, binarize, from_signed, gaussian_noise, quadrant_mask, salt_and_pepper,
                                   to_signed)

N_PIX = 100_000  # pixels in the statistical checks: binomial std of a mean is <= 0.0016


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image(value: float, n: int = N_PIX) -> torch.Tensor:
    """A batch of constant 28×28 images holding about n pixels."""
    return torch.full((n // 784 + 1, 1, 28, 28), value)


# ------------------------------------------------------------------ binarize


def test_binarize_is_zero_one_with_mean_of_grey_level():
    x = image(0.3)
    b = binarize(x, gen(0))
    assert b.shape == x.shape and b.dtype == x.dtype
    assert set(b.unique().tolist()) == {0.0, 1.0}
    assert abs(b.mean().item() - 0.3) < 0.01


def test_binarize_follows_each_pixels_grey_level():
    x = torch.cat([image(0.0, 20_000), image(0.8, 20_000), image(1.0, 20_000)])
    b = binarize(x, gen(1)).view(3, -1)
    assert b[0].sum().item() == 0  # grey 0 is always 0
    assert b[2].min().item() == 1  # grey 1 is always 1
    assert abs(b[1].mean().item() - 0.8) < 0.015


def test_binarize_repeats_with_seed_and_varies_without():
    x = image(0.5, 10_000)
    assert torch.equal(binarize(x, gen(7)), binarize(x, gen(7)))
    assert not torch.equal(binarize(x, gen(7)), binarize(x, gen(8)))
    torch.manual_seed(3)
    first = binarize(x)
    torch.manual_seed(3)
    assert torch.equal(binarize(x), first)  # the global generator when none is given


# ------------------------------------------------------------------ salt and pepper


@pytest.mark.parametrize("value", [0.0, 1.0])
@pytest.mark.parametrize("rate", [0.3, 1.0])
def test_salt_and_pepper_stays_in_unit_range_at_extremes(value, rate):
    """Seed 000's version added salt to the pixel, pushing 1.0 pixels to 2."""
    y = salt_and_pepper(image(value, 20_000), rate, gen(0))
    assert y.min().item() >= 0.0 and y.max().item() <= 1.0
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    # and the noise does reach such images: salt on black, pepper on white
    flipped = (y != value).float().mean().item()
    assert abs(flipped - rate / 2) < 0.02


def test_salt_and_pepper_changes_fraction_rate_to_zero_or_one_half_each():
    x = image(0.5)
    rate = 0.2
    y = salt_and_pepper(x, rate, gen(0))
    changed = y != x
    assert abs(changed.float().mean().item() - rate) < 0.01
    assert set(y[changed].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(y[~changed], x[~changed])
    ones = (y[changed] == 1).float().mean().item()
    assert abs(ones - 0.5) < 0.02


def test_salt_and_pepper_rate_one_replaces_everything():
    y = salt_and_pepper(image(0.5, 10_000), 1.0, gen(0))
    assert set(y.unique().tolist()) == {0.0, 1.0}


def test_salt_and_pepper_rate_zero_is_identity():
    x = torch.rand(8, 1, 28, 28, generator=gen(0))
    assert torch.equal(salt_and_pepper(x, 0.0, gen(1)), x)


def test_salt_and_pepper_keeps_dtype_and_repeats_with_seed():
    x = torch.rand(4, 1, 28, 28, generator=gen(0), dtype=torch.float64)
    y = salt_and_pepper(x, 0.3, gen(5))
    assert y.dtype == torch.float64 and y.shape == x.shape
    assert torch.equal(y, salt_and_pepper(x, 0.3, gen(5)))
    assert not torch.equal(y, salt_and_pepper(x, 0.3, gen(6)))


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_salt_and_pepper_rejects_rate_outside_unit_interval(rate):
    with pytest.raises(ValueError, match="rate") as err:
        salt_and_pepper(image(0.5, 784), rate)
    assert str(rate) in str(err.value)


# ------------------------------------------------------------------ signed range, gaussian noise


def test_to_signed_maps_unit_interval_to_minus_one_one():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(to_signed(x), torch.tensor([-1.0, -0.5, 0.0, 1.0]))
    assert torch.allclose(from_signed(torch.tensor([-1.0, -0.5, 0.0, 1.0])), x)


def test_signed_round_trip_and_range():
    x = torch.rand(16, 1, 28, 28, generator=gen(0))
    s = to_signed(x)
    assert s.min().item() >= -1.0 and s.max().item() <= 1.0
    assert s.min().item() < -0.9 and s.max().item() > 0.9  # really uses the whole range
    assert torch.allclose(from_signed(s), x, atol=1e-6)
    y = torch.rand(100) * 2 - 1
    assert torch.allclose(to_signed(from_signed(y)), y, atol=1e-6)


def test_gaussian_noise_std_and_mean():
    x = image(0.5)
    y = gaussian_noise(x, 0.3, gen(0))
    noise = y - x
    assert y.shape == x.shape
    assert abs(noise.std().item() - 0.3) < 0.005
    assert abs(noise.mean().item()) < 0.005
    assert y.max().item() > 1.0 and y.min().item() < 0.0  # not clipped (documented)


def test_gaussian_noise_zero_std_is_identity_and_seed_repeats():
    x = torch.rand(4, 1, 28, 28, generator=gen(0))
    assert torch.equal(gaussian_noise(x, 0.0, gen(1)), x)
    assert torch.equal(gaussian_noise(x, 0.1, gen(2)), gaussian_noise(x, 0.1, gen(2)))
    assert not torch.equal(gaussian_noise(x, 0.1, gen(2)), gaussian_noise(x, 0.1, gen(3)))


def test_gaussian_noise_rejects_negative_std():
    with pytest.raises(ValueError, match="std must be >= 0, got -0.1"):
        gaussian_noise(image(0.5, 784), -0.1)


# ------------------------------------------------------------------ quadrant masks


def test_single_quadrant_masks_partition_the_image():
    masks = {q: quadrant_mask([q]) for q in QUADRANTS}
    for m in masks.values():
        assert m.shape == (1, 28, 28) and m.dtype == torch.float32
        assert set(m.unique().tolist()) == {0.0, 1.0}
        assert m.sum().item() == 196
    assert torch.equal(sum(masks.values()), torch.ones(1, 28, 28))
    for a, b in itertools.combinations(QUADRANTS, 2):
        assert (masks[a] * masks[b]).sum().item() == 0, (a, b)


def test_quadrant_mask_places_each_quadrant():
    tl, br = quadrant_mask(("top_left",)), quadrant_mask(("bottom_right",))
    assert tl[0, :14, :14].min().item() == 1 and tl[0, 14:, :].max().item() == 0
    assert tl[0, :, 14:].max().item() == 0
    assert br[0, 14:, 14:].min().item() == 1 and br[0, :14, :].max().item() == 0
    tr = quadrant_mask(["top_right"])
    assert tr[0, 0, 27].item() == 1 and tr[0, 0, 0].item() == 0 and tr[0, 27, 27].item() == 0
    bl = quadrant_mask(["bottom_left"])
    assert bl[0, 27, 0].item() == 1 and bl[0, 0, 0].item() == 0


def test_quadrant_mask_unions_and_empty():
    assert quadrant_mask(["top_left", "top_right"]).sum().item() == 392
    assert torch.equal(quadrant_mask(list(QUADRANTS)), torch.ones(1, 28, 28))
    assert quadrant_mask([]).sum().item() == 0


def test_quadrant_mask_odd_size_still_partitions():
    masks = [quadrant_mask([q], size=5) for q in QUADRANTS]
    assert torch.equal(sum(masks), torch.ones(1, 5, 5))
    assert [m.sum().item() for m in masks] == [4, 6, 6, 9]


@pytest.mark.parametrize("bad", ["top", "upper_left", "Top_Left"])
def test_quadrant_mask_rejects_unknown_name(bad):
    with pytest.raises(ValueError, match=f"unknown quadrant '{bad}'"):
        quadrant_mask(["top_left", bad])


# ------------------------------------------------------------------ epoch batches


def batches(n, bs, seed=0, **kw):
    return list(epoch_batches(n, bs, generator=gen(seed), **kw))


def test_epoch_covers_every_index_once_last_batch_smaller():
    got = batches(103, 10)
    assert [len(b) for b in got] == [10] * 10 + [3]
    assert len(got) == n_batches(103, 10)
    everything = torch.cat(got)
    assert everything.dtype == torch.int64
    assert torch.equal(everything.sort().values, torch.arange(103))


def test_epoch_exact_multiple_has_no_empty_tail():
    got = batches(100, 25)
    assert [len(b) for b in got] == [25] * 4
    assert n_batches(100, 25) == 4 and n_batches(101, 25) == 5 and n_batches(1, 25) == 1


def test_epoch_order_depends_on_seed_only():
    a, b, c = torch.cat(batches(100, 16, seed=0)), torch.cat(batches(100, 16, seed=0)), torch.cat(
        batches(100, 16, seed=1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, torch.arange(100))  # it really shuffles


def test_consecutive_epochs_from_one_generator_differ():
    g = gen(0)
    first = torch.cat(list(epoch_batches(50, 8, generator=g)))
    second = torch.cat(list(epoch_batches(50, 8, generator=g)))
    assert not torch.equal(first, second)
    assert torch.equal(second.sort().values, torch.arange(50))


def test_no_shuffle_is_in_order():
    got = list(epoch_batches(10, 4, generator=None, shuffle=False))
    assert [b.tolist() for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize("n,bs,world", [(103, 10, 2), (100, 7, 3), (64, 8, 2), (11, 4, 4)])
def test_shards_over_ranks_make_up_the_global_batch(n, bs, world):
    single = batches(n, bs, seed=42)
    if len(single[-1]) < world:  # a last global batch smaller than the world is dropped (empty shares)
        single = single[:-1]
    per_rank = [batches(n, bs, seed=42, rank=r, world_size=world) for r in range(world)]
    assert all(len(steps) == len(single) for steps in per_rank)  # every rank takes the same steps
    for step, whole in enumerate(single):
        shards = [steps[step] for steps in per_rank]
        assert torch.equal(torch.cat(shards), whole)  # contiguous shares, in rank order
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1


def test_two_ranks_split_an_odd_last_batch():
    r0 = batches(103, 10, seed=3, rank=0, world_size=2)
    r1 = batches(103, 10, seed=3, rank=1, world_size=2)
    assert [len(b) for b in r0] == [5] * 10 + [2]
    assert [len(b) for b in r1] == [5] * 10 + [1]
    assert set(torch.cat(r0).tolist()).isdisjoint(torch.cat(r1).tolist())


def test_a_last_batch_smaller_than_the_world_is_dropped_on_every_rank():
    per_rank = [batches(11, 4, seed=0, rank=r, world_size=4) for r in range(4)]
    assert [len(steps) for steps in per_rank] == [2, 2, 2, 2]
    assert all(len(b) == 1 for steps in per_rank for b in steps)
    with pytest.raises(ValueError, match="rank 4 is outside 0..3"):
        epoch_batches(11, 4, generator=gen(0), rank=4, world_size=4)


@pytest.mark.parametrize("bs", [0, -3])
def test_batch_size_below_one_raises(bs):
    with pytest.raises(ValueError, match=f"batch size must be >= 1, got {bs}"):
        list(epoch_batches(10, bs, generator=gen(0)))
