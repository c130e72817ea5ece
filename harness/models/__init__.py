"""The bundled architectures, written from their papers with state-dict names of the released weights.

Names a ``submission.yaml`` uses (``model.module`` / ``model.class`` / ``model.kwargs``):

- ``imdn_baseline``: ``harness.models.imdn`` / ``IMDN`` / ``{nb: 8}``; input range 1.
- ``rfdn_baseline``: ``harness.models.rfdn`` / ``RFDN`` / ``{}``; input range 255.
- ``clb_imdn``: ``harness.models.clb`` / ``CLBIMDNForEval`` / ``{nb: 7}``; input range 1. It is the
  collapsed 7-block IMDN (loads ``team26_imdn_nb7.pth`` strictly) whose ``load_state_dict`` also
  accepts a checkpoint in training form (expanded collapsible linear blocks) and collapses it.
- ``imdn_pruned``: ``harness.models.imdn`` / ``IMDN`` / ``{nb: <blocks>}`` with weights written by
  ``esr prune``; input range 1.
- ``bicubic``: ``harness.models.bicubic`` / ``Bicubic`` / ``{scale: 4}``; input range 1; no weights.

Training form of ``clb_imdn`` (not evaluated directly): ``harness.models.clb.CLBIMDN(nb=7,
expansion=4, hidden_channels=None, expanded="all", collapse_mode="explicit")``; ``collapse()``
gives the plain IMDN. Pruning: ``harness.models.pruning.greedy_prune`` / ``prune_imdn``.
"""
