"""Tests for webui.prompts."""
