"""lm-eval's Hugging Face model with shared prefixes computed once per batch.

lm-eval scores a multiple-choice item as one request per choice, each the question followed by
the choice, so the requests of a batch repeat their question once per choice. This model runs each
batch through `forward_shared`: tokens that several requests start with are computed once. lm-eval
itself still tokenizes, batches, slices the continuation logits and scores them.
"""

from __future__ import annotations

import torch
from lm_eval.models.huggingface import HFLM

from safety_brittleness.generation import forward_shared, shared_prefixes


class SharedPrefixLM(HFLM):
    """HFLM whose forward pass over a batch of requests computes their shared prefixes once.

    The logits equal those of HFLM's own forward pass up to floating-point rounding: every row
    is right-padded to the batch width and attends causally, as there.
    """

    def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        if attn_mask is not None or labels is not None or inps.shape[0] < 2:
            return super()._model_call(inps, attn_mask, labels)
        with torch.no_grad(), torch.autocast(
            device_type=self.device.type, dtype=self.mixed_precision_dtype, enabled=self.mixed_precision_dtype is not None,
        ):
            rows = inps.tolist()
            sharing = [index for index, length in enumerate(shared_prefixes(rows)) if length]
            if not sharing:
                return self.model(inps).logits
            # Requests without a shared prefix run whole and apart, so they do not widen the batch of the others' rests.
            alone = [index for index in range(len(rows)) if index not in set(sharing)]
            # lm-eval's padding (token 0) is part of each row here, exactly as in its own unmasked pass.
            forward = forward_shared(self.model, [rows[index] for index in sharing], pad_id=0)
            width = inps.shape[1]
            rest_logits, prefix_logits = forward.output.logits, forward.prefix_output.logits
            logits = rest_logits.new_empty((len(rows), width, rest_logits.shape[-1]))
            if alone:
                logits[alone] = self.model(inps[alone]).logits.to(logits.dtype)
            for position, (index, length) in enumerate(zip(sharing, forward.shared)):
                logits[index, :length] = prefix_logits[forward.prefix_rows[position], prefix_logits.shape[1] - length:]
                logits[index, length:] = rest_logits[position, rest_logits.shape[1] - (width - length):]
            return logits
