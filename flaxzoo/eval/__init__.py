"""Evaluation: metrics (psnr, ssim, top-k; the one implementation, shared with the training tasks), restoration
inference (restore), benchmark scoring protocols, the restoration / classification / LM evaluators, reports
(CSV, summary.json, picture grid) and the published figures they are compared with. CLI: flaxzoo-eval."""
