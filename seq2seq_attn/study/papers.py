"""The papers' own comparisons, placed beside the study's results in its report: a static table of figures
as the papers state them, each with its source. Only figures read in a stored copy of the paper or of its
abstract are here; the rows that could not be found are named as missing, never filled in.
"""

from __future__ import annotations

PAPERS_SECTION = """\
## The papers' own comparisons

Figures as the papers report them (their data, models and hardware, not ours: they are placed here to be
read beside the study's figures, not compared number for number).

**Luong et al. (2015), "Effective Approaches to Attention-based Neural Machine Translation", Table 4** —
WMT'14 English→German, newstest2014, attentional models with dropout and input feeding (read from the
paper's text, arXiv 1508.04025; "x": not reported):

| attention (score) | perplexity | BLEU | BLEU after unk replacement |
| --- | ---: | ---: | ---: |
| global (location) | 6.4 | 18.1 | 19.3 |
| global (dot) | 6.1 | 18.6 | 20.5 |
| global (general) | 6.1 | 17.3 | 19.1 |
| local-m (dot) | 7.0 | x | x |
| local-m (general) | 6.2 | 18.6 | 20.4 |
| local-p (dot) | 6.6 | 18.0 | 19.6 |
| local-p (general) | 5.9 | 19.0 | 20.9 |

The concat score is not in the table: the paper's footnote 15 gives its perplexities as 6.7 (global),
7.1 (local-m) and 7.1 (local-p) and says its implementation "does not yield good performances". The
paper's reading: dot works well for global attention, general for local attention.

**Wang et al. (2020), "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks"
(CVPR)** — from the abstract and the paper's reported ImageNet result: the ECA module adds 80 parameters
and 4.7e-4 GFLOPs to a ResNet-50 of 24.37 M parameters and 3.86 GFLOPs, with a top-1 gain of more than
2 %; ECA-Net (ResNet-50) top-1 accuracy 77.48 %. *Not included:* the SE, CBAM, GC, A²-Net and GSoP rows of
the paper's ImageNet comparison table — no stored copy of that table was found, so their figures are left
out rather than quoted from memory.

**Huang et al. (2019), "CCNet: Criss-Cross Attention for Semantic Segmentation"** (abstract): compared
with the non-local block, the recurrent criss-cross attention module "requires 11× less GPU memory usage"
and reduces FLOPs "by about 85 %".

**Zhu et al. (2019), "Asymmetric Non-local Neural Networks for Semantic Segmentation"** (abstract): for a
256×128 input, APNB is "around 6 times faster than a non-local block on GPU while 28 times smaller in GPU
running memory occupation".
"""
