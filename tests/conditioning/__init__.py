"""Tests for webui.conditioning."""
