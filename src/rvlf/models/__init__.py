"""Models: skeleton encoder (GCN + transformer), VLP (stage 1), fusion and the sign LLM (stage 2)."""
