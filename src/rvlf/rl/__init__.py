"""Reinforcement fine-tuning (stage 3): rewards and GRPO."""
