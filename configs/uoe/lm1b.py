"""A Union-of-Experts byte-level LM on One Billion Word (lm1b), with the paper's model and schedule.

    python scripts/train.py --config configs/uoe/lm1b.py --workdir runs/uoe_lm1b

Data: TFDS `lm1b` (30M training sentences, `text` feature), built once in ArrayRecord format with
    tfds build lm1b --file_format=array_record      (downloads 1.7 GB; the build needs TensorFlow)
Tokenisation: UTF-8 bytes (vocab 258 with end-of-sentence and padding ids; nothing to download), packed into
windows of 512 bytes (`bytes_lm`; each window starts at a sentence and runs on across the following ones).

Model and schedule from the authors' run_lm1b.sh: 18 layers, d_model 1024, 8 heads x 128 (SMHA top-4 of 8),
d_inner 4096 as 4 UoME experts (top-2), dropout 0, 40k warm-up steps, 1M steps, batch 112, released
("faithful") routing. The paper's learning rate for lm1b is not in our notes: 2.5e-4 with clip 0.25 is its
WikiText-103 setting (AdamW; the authors' code uses amsgrad, optax's adamw here).
Target: none comparable. The paper reports word-level perplexity with an adaptive softmax (arXiv
2503.02495v3, abstract: 2.38 lower than the best MoE baseline on average over WikiText-103 and lm1b); this
byte-level run reports bits per byte (`eval/bits_per_token`), which does not convert to that.
Time: not run here (no lm1b offline). About 250M parameters: weeks on one GPU, days on 8.
"""

from flaxzoo.train.defaults import base_config
from flaxzoo.data.text import ByteTokenizer


def get_config(arg=None):
    c = base_config()
    c.model.name = "uoe_lm_small"
    c.model.kwargs.update(dict(vocab_size=ByteTokenizer.vocab_size, dim=1024, depth=18, num_heads=8,
                               hidden_dim=4096, head_top_k=4, num_experts=4, top_k=2, mode="faithful",
                               dropout=0.0))
    # grouped-GEMM UoME (flaxzoo.layers.grouped_experts), for GPU/TPU: --config.model.kwargs.expert_impl=grouped
    c.model.kwargs.update(dict(expert_impl="capacity", dropless=False))
    c.task.name = "lm"
    c.data.train = c.data.eval = "tfds:lm1b"
    c.data.train_split, c.data.eval_split = "train", "test"
    c.data.preprocess = "bytes_lm"
    c.data.pp.update(dict(seq_len=512, stride=1, text_key="text"))
    c.batch_size = 112
    c.total_steps = 1_000_000
    c.optim.update(dict(name="adamw", lr=2.5e-4, weight_decay=0.0, warmup_steps=40_000, min_lr_ratio=0.0,
                        clip_norm=0.25))
    c.compute_dtype = "bfloat16"
    c.best_metric, c.best_mode = "eval/loss", "min"
    c.log_every = 100
    c.eval_every = 20_000
    c.eval_batches = 200  # lm1b test has 306k sentences; a fixed 200-batch slice keeps evals short
    c.checkpoint_every = 5_000
    return c
