"""Catalogue modules: each defines ``MESSAGES = {key: (english, chinese)}`` for one area."""
