"""EEGFoundation baseline: tokenizers, masking, encoder size, heads, pretraining and fine-tuning."""

import copy
import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback
from torch.utils.data import TensorDataset

from eegdm_utils.data.recordings import DataError
from eegdm_utils.foundation import tokenizer as tok
from eegdm_utils.foundation.classifier import EmbeddedLines, fit_foundation_classifier, predict_windows
from eegdm_utils.foundation.collator import IGNORE, MaskingCollator, MaskingConfig, mask_tokens
from eegdm_utils.foundation.model import (EncoderConfig, FoundationClassifier, FusedRoFormerSelfAttention, HeadConfig,
                                          build_encoder, centre_crop, channel_embeddings, paper_config, roformer_config,
                                          split_embeddings)
from eegdm_utils.foundation.token_pretraining import (FoundationPretrainConfig, MaskedTokenModule, load_encoder,
                                                      masked_accuracy, pretrain_sets, train_foundation,
                                                      unigram_baseline)
from eegdm_utils.foundation.tokenizer import (AmplitudeTokenizer, MinMaxTokenizer, build_sequences, embedding_sequences,
                                              reject_out_of_range)
from eegdm_utils.train.finetuning import FinetuneConfig, finetune_optim
from eegdm_utils.train.trainer import read_csv_log

pytestmark = pytest.mark.usefixtures("one_thread")

L = 64  # samples per test window
TINY = EncoderConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_positions=L + 2)
HEAD = dict(n_channels=3, n_samples=L, n_classes=2, patch=16, stride=8, d_model=16, n_heads=2, d_hidden=8)


def test_special_ids_vocabulary_and_framing():
    assert (tok.MASK_ID, tok.PAD_ID, tok.CLS_ID, tok.SEP_ID, tok.UNK_ID, tok.VOCAB_SIZE) == (2001, 2002, 2003, 2004,
                                                                                             2005, 2006)
    assert build_encoder(TINY).roformer.embeddings.word_embeddings.num_embeddings == 2006
    ids = torch.tensor([[5, 6, 7], [0, 1999, 3]])
    seq, attention = build_sequences(ids, length=7)
    assert seq.tolist()[0] == [2003, 5, 6, 7, 2004, 2002, 2002]
    assert attention.tolist()[1] == [1, 1, 1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="at least 5"):
        build_sequences(ids, length=4)
    # the release's embedding input (test_model_embedding.py): [2003] + x[:, :-2] + [2004], the length kept
    framed, attention = embedding_sequences(torch.tensor([[5, 6, 7, 8, 9]]))
    assert framed.tolist() == [[2003, 5, 6, 7, 2004]] and attention.tolist() == [[1, 1, 1, 1, 1]]


def test_minmax_round_trip_within_half_a_bin():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 300, generator=g, dtype=torch.float64) * torch.tensor([[0.1], [1], [3], [10], [0.01], [5]]) + 2
    ids = MinMaxTokenizer().encode(x)
    assert ids.dtype == torch.int64
    assert (ids.amin(1) == 0).all() and (ids.amax(1) == 1999).all()  # every window spans all 2000 levels
    low, high = x.amin(1, keepdim=True), x.amax(1, keepdim=True)
    half_bin = (high - low) / 1999 / 2
    assert ((MinMaxTokenizer().decode(ids, low, high) - x).abs() <= half_bin * (1 + 1e-5)).all()
    unit = (x - low) / (high - low)
    assert ((MinMaxTokenizer().decode(ids) - unit).abs() <= 0.5 / 1999 * (1 + 1e-5)).all()
    # the released tokens forget amplitude and offset
    assert torch.equal(MinMaxTokenizer().encode(3 * x - 7), ids)


def test_amplitude_tokenizer_keeps_absolute_amplitude_uniform_bins():
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(4, 500, generator=g, dtype=torch.float64) * 2 - 1) * 0.99  # store units, within +-100 uV
    t = AmplitudeTokenizer(range_uv=100.0)
    bin_width = 2 * 1.0 / 1999  # +-100 uV = +-1 store unit over 1999 steps
    assert ((t.decode(t.encode(x)) - x).abs() <= bin_width / 2 * (1 + 1e-5)).all()
    # 50 uV is (0.5 + 1) / 2 of the range: level 1499.25 -> 1499; the same in uV input units
    assert t.encode(torch.tensor([[0.5]])).item() == 1499
    assert AmplitudeTokenizer(range_uv=100.0, unit_uv=1.0).encode(torch.tensor([[50.0]])).item() == 1499
    clipped = t.encode(torch.tensor([[5.0, -5.0]]))
    assert clipped.tolist() == [[1999, 0]] and t.decode(clipped).tolist() == [[1.0, -1.0]]
    assert not torch.equal(t.encode(x), t.encode(2 * x))  # unlike min-max, amplitude changes the tokens


def test_amplitude_tokenizer_mu_law_bins():
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(4, 500, generator=g, dtype=torch.float64) * 2 - 1) ** 3  # many small values
    mu = 255.0
    t = AmplitudeTokenizer(range_uv=100.0, spacing="mulaw", mu=mu)

    def compand(v):  # the mu-law curve, written out here
        return np.sign(v) * np.log(1 + mu * np.abs(v)) / np.log(1 + mu)

    decoded = t.decode(t.encode(x))
    assert (np.abs(compand(decoded.numpy()) - compand(x.numpy())) <= 1 / 1999 * (1 + 1e-4)).all()
    small = x.abs() < 0.01  # under 1 uV: mu-law bins are much finer there than uniform ones
    assert small.sum() > 50
    assert (decoded - x)[small].abs().max() < 0.2 * (1 / 1999)
    with pytest.raises(ValueError, match="spacing"):
        AmplitudeTokenizer(spacing="log")


@pytest.mark.parametrize("tokenizer", [MinMaxTokenizer(), AmplitudeTokenizer()])
def test_missing_channels_are_never_tokenized_silently(tokenizer):
    x = torch.randn(3, 50)
    x[1] = float("nan")
    with pytest.raises(ValueError, match="1 of 3 channel windows.*present == False"):
        tokenizer.encode(x)
    with pytest.raises(ValueError, match="special tokens"):
        tokenizer.decode(torch.tensor([[3, tok.CLS_ID]]))


def test_rejection_of_out_of_range_segments():
    x = torch.full((10, 100), 0.5)  # 50 uV
    x[2, 40], x[5, 0], x[7, 99], x[8, 3] = 1.0, -1.0, -1.5, 0.999  # 100 uV reaches the limit; 99.9 uV does not
    x[9, :50] = float("nan")  # a missing stretch neither rejects nor passes a window on its own
    keep, rejected = reject_out_of_range(x, threshold_uv=100.0)
    assert keep.tolist() == [True, True, False, True, True, False, True, False, True, True]
    assert rejected == 3
    windows = x.reshape(5, 2, 100)  # whole windows of 2 channels: one bad channel drops its window
    keep, rejected = reject_out_of_range(windows, dims=2)
    assert keep.tolist() == [True, False, False, False, True] and rejected == 3


class _Store:
    """What ``PretrainDataset`` and ``pretrain_sets`` read of a store: windows, present, counts."""

    def __init__(self, windows: np.ndarray, val: slice = slice(0, 2)):
        self.path = "tiny_store"
        self.arrays = {"train": windows, "val": windows[val]}
        self.meta = {"n_pretrain": {"train": 1, "val": 1}}

    def windows(self, split):
        return self.arrays[split]

    def present(self, split):
        return ~np.isnan(self.arrays[split]).any(-1)


def test_pretraining_sets_leave_out_every_channel_of_a_window_that_is_out_of_range():
    windows = np.full((4, 3, 20), 0.2, dtype=np.float32)  # 20 uV
    windows[0, 1, 5] = 1.2  # 120 uV
    windows[1, 0, 0] = -1.0  # -100 uV reaches the limit
    windows[2, 2] = np.nan  # missing: not a pretraining item at all
    windows[3, 2, 7] = 0.95
    with pytest.raises(DataError, match="tiny_store: every val window reaches 100 uV \\(6 rejected\\)"):
        pretrain_sets(_Store(windows), FoundationPretrainConfig(reject_uv=100.0))  # val: windows 0 and 1, both out
    train, val, info = pretrain_sets(_Store(windows, val=slice(1, 4)), FoundationPretrainConfig(reject_uv=100.0))
    # as the release drops a whole multi-channel segment: windows 0 and 1 go with all their channels (6 items);
    # train keeps windows 2 (its 2 present channels) and 3 (0.95 stays under 100 uV); val keeps windows 2 and 3
    assert info == {"rejected": {"train": 6, "val": 3}, "kept": {"train": 5, "val": 5}}
    kept = [tuple(int(v) for v in train.dataset.pairs[i]) for i in train.indices]  # (window, channel)
    assert set(kept) == {(2, 0), (2, 1), (3, 0), (3, 1), (3, 2)}
    assert all(np.array_equal(x[0].numpy(), windows[w, k]) and c == k for (x, c), (w, k) in zip(train, kept))
    assert all(x.shape == (1, 20) for x, _ in val)


def _amplitude_sequences(n: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return build_sequences(torch.randint(0, 2000, (n, length), generator=g), length=length + 10)[0]


def test_masking_statistics_on_a_fixed_seed():
    seq = _amplitude_sequences(64, 1000)  # 64,000 amplitude tokens
    inputs, labels = mask_tokens(seq, torch.Generator().manual_seed(3))
    n = 64 * 1000
    selected = labels != IGNORE
    k = int(selected.sum())
    assert abs(k - 0.15 * n) < 5 * math.sqrt(n * 0.15 * 0.85)
    as_mask = int((inputs[selected] == tok.MASK_ID).sum())
    changed = int(((inputs != seq) & (inputs != tok.MASK_ID))[selected].sum())
    unchanged = int((inputs == seq)[selected].sum())
    # a random id is drawn from all 2006 ids (transformers' collator): one time in 2006 it is the original,
    # one time in 2006 it is [MASK]
    expected = {"mask": 0.8 + 0.1 / 2006, "random": 0.1 * 2004 / 2006, "same": 0.1 + 0.1 / 2006}
    for name, count in [("mask", as_mask), ("random", changed), ("same", unchanged)]:
        p = expected[name]
        assert abs(count - p * k) < 5 * math.sqrt(k * p * (1 - p)), name
    assert torch.equal(labels[selected], seq[selected]) and torch.equal(inputs[~selected], seq[~selected])
    assert (inputs[selected] < tok.VOCAB_SIZE).all()


def test_special_tokens_are_never_masked_and_masking_is_reproducible():
    seq = _amplitude_sequences(200, 20, seed=1)
    special = seq >= 2000  # [CLS], [SEP] and ten [PAD] per row
    inputs, labels = mask_tokens(seq, torch.Generator().manual_seed(4), MaskingConfig(probability=0.9))
    assert (labels[special] == IGNORE).all() and torch.equal(inputs[special], seq[special])
    assert (labels[~special] != IGNORE).float().mean() > 0.8  # the amplitude tokens were eligible
    again, _ = mask_tokens(seq, torch.Generator().manual_seed(4), MaskingConfig(probability=0.9))
    other, _ = mask_tokens(seq, torch.Generator().manual_seed(5), MaskingConfig(probability=0.9))
    assert torch.equal(again, inputs) and not torch.equal(other, inputs)


def test_collator_masks_bare_amplitude_ids_of_dataset_items_as_the_release_pretrains():
    items = [(torch.randn(1, L), 4), (torch.randn(1, L), 17), (torch.randn(1, L), 0)]  # PretrainDataset items
    first = MaskingCollator(MinMaxTokenizer(), generator=torch.Generator().manual_seed(6))(items)
    again = MaskingCollator(MinMaxTokenizer(), generator=torch.Generator().manual_seed(6))(items)
    assert {k: v.shape for k, v in first.items()} == {"input_ids": (3, L), "attention_mask": (3, L),
                                                       "labels": (3, L), "channel": (3,)}
    assert first["channel"].tolist() == [4, 17, 0] and (first["attention_mask"] == 1).all()
    labelled = first["labels"] != IGNORE
    expected = MinMaxTokenizer().encode(torch.cat([x for x, _ in items]))  # [3, L]: no [CLS] or [SEP]
    assert labelled.any() and torch.equal(first["labels"][labelled], expected[labelled])
    assert torch.equal(first["input_ids"][~labelled], expected[~labelled])
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_paper_size_encoder_parameter_count():
    with torch.device("meta"):  # shapes only: no 350 MB of weights
        model = build_encoder(paper_config())
    V, H, F, n, positions = 2006, 768, 3072, 12, 2000
    layer = 4 * (H * H + H) + (H * F + F) + (F * H + H) + 2 * 2 * H  # q, k, v, out; FFN; two LayerNorms
    embeddings = V * H + 2 * H + 2 * H  # words, 2 token types, LayerNorm
    mlm_head = (H * H + H) + 2 * H + V  # transform, LayerNorm, output bias (output weights tied to the words)
    expected = embeddings + n * layer + mlm_head
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected == 87_192_278
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert frozen == positions * (H // 12)  # the sinusoid table of the rotary encoding, 64 per head
    # the release's 2,000-sample sequences, framed for an embedding within the same length, fill the table
    assert embedding_sequences(torch.zeros(1, 2000, dtype=torch.long))[0].shape[1] == \
        roformer_config(paper_config()).max_position_embeddings == 2000


def test_channel_embeddings_skip_missing_channels():
    torch.manual_seed(0)
    encoder = build_encoder(TINY).eval()
    x = torch.randn(2, 3, L)
    x[1, 2] = float("nan")
    embeddings, present = channel_embeddings(encoder, MinMaxTokenizer(), x)
    assert present.tolist() == [[True, True, True], [True, True, False]]
    assert embeddings.shape == (2, 3, 32)
    assert (embeddings[1, 2] == 0).all() and (embeddings[present].abs().sum(-1) > 0).all()
    alone, _ = channel_embeddings(encoder, MinMaxTokenizer(), x[:1, 1:2])  # a channel's vector is its own
    assert torch.allclose(alone[0, 0], embeddings[0, 1], atol=1e-5)


@pytest.mark.parametrize("head", ["release", "fusion"])
def test_heads_give_logits_and_ignore_missing_channels(head):
    torch.manual_seed(0)
    net = FoundationClassifier(build_encoder(TINY), MinMaxTokenizer(), HeadConfig(**HEAD, head=head)).eval()
    x = torch.randn(4, 3, L)
    present = torch.ones(4, 3, dtype=torch.bool)
    present[0, 1] = present[2, 0] = False
    logits = net(x, present)
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()
    for fill in (float("nan"), 1e3):
        other = x.clone()
        other[0, 1], other[2, 0] = fill, -fill
        assert torch.allclose(net(other, present), logits, atol=1e-5)
    assert not torch.allclose(net(x), logits, atol=1e-4)  # unmasked, those channels would count
    moved = x.clone()
    moved[0, 0] = torch.randn(L)
    assert not torch.allclose(net(moved, present)[0], logits[0], atol=1e-4)
    with pytest.raises(ValueError, match="head"):
        HeadConfig(head="mean")


def test_fusion_leaves_missing_channels_out_entirely():
    """The fusion head does not depend on the number of channels, so a window with a missing
    channel must give what the same window without that channel gives."""
    torch.manual_seed(0)
    net = FoundationClassifier(build_encoder(TINY), MinMaxTokenizer(), HeadConfig(**HEAD, head="fusion")).eval()
    x = torch.randn(4, 3, L)
    present = torch.ones(4, 3, dtype=torch.bool)
    present[:, 1] = False
    assert torch.allclose(net(x, present), net(x[:, [0, 2]], present[:, [0, 2]]), atol=1e-5)


def test_fused_attention_is_the_eager_attention():
    """The fused encoder computes what transformers' eager RoFormer computes, padding masked."""
    torch.manual_seed(0)
    eager = build_encoder(TINY, fused=False).eval()
    fused = build_encoder(TINY).eval()
    fused.load_state_dict(eager.state_dict())
    assert isinstance(fused.roformer.encoder.layer[0].attention.self, FusedRoFormerSelfAttention)
    assert not isinstance(eager.roformer.encoder.layer[0].attention.self, FusedRoFormerSelfAttention)
    ids, attention = build_sequences(MinMaxTokenizer().encode(torch.randn(3, L - 10)), length=L + 2)  # 10 [PAD]
    with torch.no_grad():
        a = eager(input_ids=ids, attention_mask=attention).logits
        b = fused(input_ids=ids, attention_mask=attention).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_masked_step_loss_is_the_masked_lm_loss():
    """Decoding only the selected positions gives the loss of RoFormerForMaskedLM(labels=...)."""
    torch.manual_seed(0)
    module = MaskedTokenModule(asdict(FoundationPretrainConfig(encoder=TINY))).eval()
    x = torch.randn(4, 1, L)
    loss, accuracy = module.masked_step(x, torch.Generator().manual_seed(3))
    batch = module.collator.mask_batch(x[:, 0], torch.Generator().manual_seed(3))
    out = module.model(**batch)
    assert torch.allclose(loss, out.loss, atol=1e-5)
    assert accuracy.item() == pytest.approx(masked_accuracy(out.logits, batch["labels"]).item())


def test_centre_crop_takes_the_middle_and_refuses_longer_sequences():
    x = torch.arange(10.0)
    assert centre_crop(x, 4).tolist() == [3.0, 4.0, 5.0, 6.0]
    assert centre_crop(x, None) is x
    with pytest.raises(ValueError, match="does not fit"):
        centre_crop(x, 11)


def test_embeddings_computed_once_give_the_classifier_the_same_logits():
    """split_embeddings + (x, embeddings) pairs, as notebook 90 trains, equal computing the
    embeddings inside the classifier from the raw windows."""
    torch.manual_seed(0)
    encoder = build_encoder(TINY).eval()
    x = torch.randn(5, 3, L)
    present = torch.ones(5, 3, dtype=torch.bool)
    present[1, 2] = False
    x[1, 2] = float("nan")
    stored = split_embeddings(encoder, MinMaxTokenizer(), x.numpy(), present.numpy(), batch_windows=2)
    assert stored.shape == (5, 3, 32) and (stored[1, 2] == 0).all()
    net = FoundationClassifier(encoder, MinMaxTokenizer(), HeadConfig(**HEAD)).eval()
    raw = torch.nan_to_num(x)
    assert torch.allclose(net((raw, torch.from_numpy(stored)), present), net(raw, present), atol=1e-5)
    cropped = split_embeddings(encoder, MinMaxTokenizer(), x.numpy(), present.numpy(), samples=32)
    assert not np.allclose(cropped, stored)  # the crop reaches the encoder


def test_embedded_lines_refuse_embeddings_of_other_windows():
    class Store:
        def __init__(self):
            self.x = np.zeros((4, 3, L), dtype=np.float32)

        def present(self, split):
            return np.ones((4, 3), dtype=bool)

        def faithful(self, split):
            return {"window": np.array([0, 1, 1, 3]), "channel": np.zeros(4, int), "label": np.array([0, 1, 1, 0])}

        def windows(self, split):
            return self.x

    store = Store()
    items = EmbeddedLines(store, "train", np.ones((4, 3, 8), dtype=np.float32))
    (signal, embedding), present, label, weight = items[1]
    assert signal.shape == (3, L) and embedding.shape == (3, 8) and (label, weight) == (1, 2.0)
    with pytest.raises(ValueError, match="not those of the train windows"):
        EmbeddedLines(store, "train", np.ones((5, 3, 8), dtype=np.float32))
    # every window (also the unlabelled window 2) gets the class the model gives it alone
    store.x = np.random.default_rng(0).normal(size=store.x.shape).astype(np.float32)
    torch.manual_seed(0)
    head = HeadConfig(**{**HEAD, "n_classes": 3})
    net = FoundationClassifier(build_encoder(EncoderConfig(**{**asdict(TINY), "hidden_size": 8, "num_heads": 2,
                                                             "intermediate_size": 16})), MinMaxTokenizer(), head).eval()
    items = EmbeddedLines(store, "train", 30 * np.random.default_rng(1).normal(size=(4, 3, 8)).astype(np.float32))
    classes = predict_windows(net, items, batch=3)
    alone = [int(net((torch.from_numpy(store.x[w:w + 1]), torch.from_numpy(items.embeddings[w:w + 1])),
                     torch.ones(1, 3, dtype=torch.bool)).argmax()) for w in range(4)]
    assert len(set(alone)) > 1  # the windows get different classes, so an index mix-up would show
    assert classes.tolist() == alone


def test_the_frozen_encoder_stays_in_eval_mode():
    net = FoundationClassifier(build_encoder(TINY), MinMaxTokenizer(), HeadConfig(**HEAD))
    net.train()
    assert net.head.training and not any(m.training for m in net.encoder.modules())
    assert not any(p.requires_grad for p in net.encoder.parameters())


def test_masked_accuracy_and_unigram_baseline():
    logits = torch.zeros(1, 4, 6)
    logits[0, [0, 1, 2, 3], [1, 2, 5, 4]] = 1.0  # predictions 1, 2, 5, 4
    labels = torch.tensor([[1, IGNORE, 3, 4]])
    assert masked_accuracy(logits, labels).item() == pytest.approx(2 / 3)
    train = torch.tensor([[tok.CLS_ID, 7, 7, 7, 3, tok.SEP_ID, tok.PAD_ID, tok.PAD_ID, tok.PAD_ID, tok.PAD_ID]])
    evaluation = torch.tensor([[tok.CLS_ID, 7, 1, 2, 7, 5, 6, 8, 9, 7, 0, tok.SEP_ID]])  # 3 of 10 amplitude ids are 7
    assert unigram_baseline(train, evaluation) == (7, pytest.approx(0.3))


def test_optimizer_and_schedule_are_the_releases_decoupled_adamw_and_linear_warmup_to_two_percent():
    """Pretrain/pretrain.py: composer's DecoupledAdamW(lr 5e-4, betas (0.9, 0.98), eps 1e-6, weight decay 1e-5 on
    every parameter) and LinearWithWarmupScheduler(t_warmup 1%, alpha_f 0.02), written out from composer's
    formulas: lr(b) = 5e-4 b / W in the warm-up, then 5e-4 (1 - 0.98 (b - W) / (T - W)); each step shrinks every
    weight by (lr / 5e-4) * 1e-5."""
    config = FoundationPretrainConfig(encoder=TINY, max_steps=200)
    module = MaskedTokenModule(asdict(config))
    optimizers = module.configure_optimizers()
    optimizer, schedule = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    assert len(optimizer.param_groups) == 1  # no parameter spared
    assert optimizer.defaults["betas"] == (0.9, 0.98) and optimizer.defaults["eps"] == 1e-6
    T, W = 200, 2  # 1% of 200 steps
    composer = [5e-4 * b / W if b < W else 5e-4 * (1 - 0.98 * min(1.0, (b - W) / (T - W))) for b in range(T)]
    rates = []
    for _ in range(T):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients yet: nothing moves
        schedule.step()
    assert rates == pytest.approx(composer, rel=1e-9, abs=1e-15)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4 * 0.02)  # alpha_f at the end
    # the decoupled decay of one step at the peak, with a zero gradient (Adam's update is then 0)
    fresh = MaskedTokenModule(asdict(config)).configure_optimizers()
    opt = fresh["optimizer"]
    weight = opt.param_groups[0]["params"][0]
    before = weight.detach().clone()
    for group in opt.param_groups:
        group["lr"] = 5e-4
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.allclose(weight.detach(), before * (1 - 1e-5), rtol=0, atol=1e-9)


class _StopAt(Callback):
    """An interruption: training stops after ``step`` steps."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        trainer.should_stop = trainer.should_stop or trainer.global_step >= self.step


def test_an_interrupted_pretraining_resumes_to_the_same_weights(tmp_path):
    windows = torch.randn(24, 1, L) * 0.2
    train = TensorDataset(windows, torch.zeros(24, dtype=torch.long))
    config = FoundationPretrainConfig(encoder=TINY, batch_size=4, max_steps=8)  # dropout 0.1: noise must replay
    straight, _ = train_foundation(tmp_path / "straight", train, None, config, ckpt_every=3)
    train_foundation(tmp_path / "resumed", train, None, config, ckpt_every=3, callbacks=[_StopAt(3)])
    resumed, _ = train_foundation(tmp_path / "resumed", train, None, config, ckpt_every=3)
    assert resumed.start_step == 3 and straight.global_step == resumed.global_step == 8
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _sines(n: int, channels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sines of a low (class 0) or high (class 1) frequency with noise, in store units."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    freq = torch.where(y == 1, 4.0, 1.0)[:, None, None] * (1 + 0.1 * torch.rand(n, channels, 1, generator=g))
    phase = 2 * math.pi * torch.rand(n, channels, 1, generator=g)
    t = torch.arange(L) / L
    x = 0.3 * torch.sin(2 * math.pi * freq * t + phase) + 0.02 * torch.randn(n, channels, L, generator=g)
    return x, y


def test_tiny_pretraining_then_finetuning_end_to_end(tmp_path):
    windows, _ = _sines(48, 1, seed=0)  # [48, 1, L] single-channel windows
    train = TensorDataset(windows, torch.zeros(48, dtype=torch.long))
    val = TensorDataset(_sines(8, 1, seed=1)[0], torch.zeros(8, dtype=torch.long))
    config = FoundationPretrainConfig(encoder=TINY, batch_size=8, max_steps=150)
    train_foundation(tmp_path / "pretrain", train, val, config, val_every=75, log_every=1)
    log = read_csv_log(tmp_path / "pretrain" / "logs", "foundation")
    losses = log["train_loss"].dropna().to_numpy()
    # the release's small learning rate moves a tiny model slowly: 150 steps take the loss from
    # ln(2006) = 7.6 down by about 0.25, several times the step-to-step noise (std about 0.04)
    assert len(losses) == 150 and losses[:10].mean() == pytest.approx(math.log(2006), abs=0.05)
    assert losses[-10:].mean() < losses[:10].mean() - 0.15
    assert log["val_acc"].notna().any()

    encoder, tokenizer, saved = load_encoder(tmp_path / "pretrain" / "foundation.ckpt")
    assert saved.encoder == TINY and not any(p.requires_grad for p in encoder.parameters())
    faster = replace(FoundationPretrainConfig().optim, lr=1e-3)
    with pytest.raises(ValueError, match=r"other settings \(optim.lr differ\)"):
        train_foundation(tmp_path / "pretrain", train, val, FoundationPretrainConfig(encoder=TINY, batch_size=8,
                                                                                     max_steps=150,
                                                                                     optim=faster))
    frozen = copy.deepcopy(encoder.state_dict())
    x, y = _sines(32, 3, seed=2)
    present = torch.ones(32, 3, dtype=torch.bool)
    present[::4, 2] = False  # some windows miss a channel, stored as 0
    x[::4, 2] = 0.0
    items = lambda s: TensorDataset(x[s], present[s], y[s], torch.ones(len(y[s])))  # noqa: E731
    net = FoundationClassifier(encoder, tokenizer, HeadConfig(**HEAD, head="fusion"))
    head_before = copy.deepcopy(net.head.state_dict())
    finetune = FinetuneConfig(max_epochs=2, warmup_epochs=1, batch_size=8, optim=finetune_optim(1e-4, 0.1))
    module, epochs, _ = fit_foundation_classifier(net, items(slice(0, 24)), items(slice(24, 32)), finetune,
                                                  tmp_path / "finetune", n_classes=2)
    assert epochs == 2
    after = module.net.encoder.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # the encoder stayed frozen
    assert any(not torch.equal(head_before[k], v) for k, v in module.net.head.state_dict().items())
    logits = module.eval()(x[:5], present[:5])
    assert logits.shape == (5, 2) and torch.isfinite(logits).all()
