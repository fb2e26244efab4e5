"""Model registry: immutable model versions, promotion, exports, embeddings and similar cases."""
