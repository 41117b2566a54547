"""Scripts over processing (X/Y/Z plot, prompt matrix, prompts from file): one API for the UI and the REST API."""
from webui.scripts.common import ScriptContext
from webui.scripts.registry import SCRIPTS, find_script, run_script, script_info, script_titles

__all__ = ["SCRIPTS", "ScriptContext", "find_script", "run_script", "script_info", "script_titles"]
