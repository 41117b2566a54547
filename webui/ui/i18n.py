"""UI text in English and Simplified Chinese: Gradio's I18n picks by browser language; Settings can force one."""
from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Collection, Iterable

import gradio as gr
from gradio.i18n import I18nData

LOCALES = ("Auto", "en", "zh-CN")
# More translations, one JSON file per part of the UI (a new tab adds its own file instead of editing this one).
LOCALE_FOLDER = Path(__file__).parent / "locales"
STORAGE_KEY = "sdwebui-localization"

# English text is the key; only translations are listed. Kept as a read-only mapping (no mutable module state).
_ZH_CN_CORE = {
    "Stable Diffusion checkpoint": "Stable Diffusion 模型",
    "SD VAE": "SD VAE 模型",
    "Clip skip": "CLIP 终止层数",
    "Prompt": "正向提示词",
    "Negative prompt": "反向提示词",
    "Generate": "生成",
    "Interrupt": "中止",
    "Skip": "跳过",
    "Styles": "预设样式",
    "Apply selected styles to the prompt": "将所选样式应用到提示词",
    "Style name": "样式名称",
    "Save style": "保存样式",
    "Delete style": "删除样式",
    "Edit styles": "编辑样式",
    "Sampling method": "采样方法",
    "Schedule type": "调度类型",
    "Sampling steps": "迭代步数",
    "Width": "宽度",
    "Height": "高度",
    "Swap width and height": "交换宽高",
    "Lock aspect ratio": "锁定宽高比",
    "Batch count": "总批次数",
    "Batch size": "单批数量",
    "CFG Scale": "提示词引导系数 (CFG Scale)",
    "Seed": "随机数种子 (Seed)",
    "Extra": "更多",
    "Variation seed": "差异随机种子",
    "Variation strength": "差异强度",
    "Resize seed from width": "从宽度调整种子",
    "Resize seed from height": "从高度调整种子",
    "Hires. fix": "高分辨率修复 (Hires. fix)",
    "Upscaler": "放大算法",
    "Hires steps": "高分迭代步数",
    "Denoising strength": "重绘幅度",
    "Upscale by": "放大倍数",
    "Resize width to": "将宽度调整为",
    "Resize height to": "将高度调整为",
    "Output": "输出",
    "Generation info": "生成信息",
    "Send to img2img": "发送到图生图",
    "Send to inpaint": "发送到局部重绘",
    "Send to extras": "发送到后期处理",
    "Send to txt2img": "发送到文生图",
    "Generation": "生成",
    "Lora": "Lora",
    "Textual Inversion": "嵌入式 (T.I. Embedding)",
    "Checkpoints": "模型",
    "Search": "搜索",
    "Subfolder": "子文件夹",
    "Refresh": "刷新",
    "Set preview from the selected image": "用所选图片作为预览图",
    "Card name": "卡片名称",
    "PNG Info": "图片信息",
    "Source": "来源",
    "Parameters": "参数",
    "Settings": "设置",
    "Apply settings": "保存设置",
    "Extras": "后期处理",
    "img2img": "图生图",
    "txt2img": "文生图",
    "Sketch": "涂鸦",
    "Inpaint": "局部重绘",
    "Inpaint upload": "上传重绘蒙版",
    "Batch": "批量处理",
    "Image": "图像",
    "Mask": "蒙版",
    "Mask blur": "蒙版边缘模糊度",
    "Mask mode": "蒙版模式",
    "Masked content": "蒙版区域内容处理",
    "Inpaint area": "重绘区域",
    "Only masked padding, pixels": "仅蒙版区域下边缘预留像素",
    "Resize mode": "缩放模式",
    "Input directory": "输入目录",
    "Output directory": "输出目录",
    "Inpaint batch mask directory": "批量重绘蒙版目录",
    "Scale by": "缩放倍数",
    "Scale to": "缩放到指定尺寸",
    "Crop to fit": "裁剪以适应宽高比",
    "Upscaler 1": "放大算法 1",
    "Upscaler 2": "放大算法 2",
    "Upscaler 2 visibility": "放大算法 2 强度",
    "Language": "语言",
    "Live preview every N sampling steps (0 = off)": "每 N 步显示一次实时预览 (0 = 关闭)",
    "Show live previews": "显示实时预览",
    "Default LoRA weight": "默认 LoRA 权重",
    "Emphasis mode": "强调模式",
    "Comma back-off (tokens)": "逗号回退 (token 数)",
    "Images filename pattern": "图片文件名格式",
    "Output directory for images": "图片输出目录",
    "Save images to a subdirectory": "保存到子文件夹",
    "File format for images": "图片文件格式",
    "Default sampling method": "默认采样方法",
    "Default schedule type": "默认调度类型",
    "Default sampling steps": "默认迭代步数",
    "Default width": "默认宽度",
    "Default height": "默认高度",
    "Default CFG Scale": "默认 CFG 系数",
    "Defaults": "默认值",
    "Live previews": "实时预览",
    "Prompts": "提示词",
    "Saving images": "保存图片",
    "User interface": "用户界面",
    "Settings saved.": "设置已保存。",
    "Reload the page to use the new language.": "刷新页面以使用新语言。",
}


def _locale_files(locale: str) -> dict[str, str]:
    """Every `locales/<locale>/*.json` merged, in name order."""
    merged: dict[str, str] = {}
    for path in sorted((LOCALE_FOLDER / locale).glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


ZH_CN = MappingProxyType({**_ZH_CN_CORE, **_locale_files("zh-CN")})


def t(text: str) -> I18nData:
    """A label that the browser shows in its language (English text doubles as the key)."""
    return I18nData(text)


def translated_choices(values: Iterable[str], only: Collection[str] | None = None) -> list[tuple[str | I18nData, str]]:
    """Dropdown/Radio choices shown in the page's language (all of them, or those in `only`; names such as
    samplers stay as they are); the values the handlers get stay English."""
    return [(t(value) if only is None or value in only else value, value) for value in values]


def make_i18n() -> gr.I18n:
    """The translations handed to launch(i18n=…); English maps every key to itself."""
    return gr.I18n(en={key: key for key in ZH_CN}, **{"zh-CN": dict(ZH_CN)})


def locale_head_script(localization: str = "Auto") -> str:
    """A language chosen in Settings (this browser's choice, else config.json's) wins over the browser's.

    Gradio injects head scripts after it has picked the browser's language, so the script switches afterwards
    through Gradio's own `changeLocale` (the footer's language menu uses it), found among the loaded modules.
    """
    fallback = json.dumps(localization if localization in LOCALES else "Auto")
    key = json.dumps(STORAGE_KEY)
    return page_language_script() + (
        "<script>(function(){var chosen=null;try{chosen=localStorage.getItem(" + key + ");}catch(e){}"
        "if(!chosen){chosen=" + fallback + ";}if(!chosen||chosen==='Auto'){return;}"
        "var urls=performance.getEntriesByType('resource').map(function(r){return r.name;})"
        ".filter(function(u){return /\\/assets\\/core-[\\w-]+\\.js$/.test(u);});"
        "if(!urls.length){return;}"
        "import(urls[0]).then(function(m){if(m.changeLocale){m.changeLocale(chosen);}}).catch(function(){});"
        "})();</script>"
    )


TOAST_TITLES = ("Error", "Info", "Success", "Warning")


def page_language_script() -> str:
    """Keeps the server told which language the page shows, and words Gradio's toast titles in it.

    Gradio sets <html lang> to the language it picked (browser, Settings or its own footer menu); a cookie of the
    storage key's name carries it to the server (webui.ui.messages). Gradio titles a toast by its kind in English,
    whatever title the server sends, so on a Chinese page the titles are replaced as toasts appear.
    """
    titles = json.dumps({title: ZH_CN[title] for title in TOAST_TITLES}, ensure_ascii=False)
    key = json.dumps(STORAGE_KEY)
    return ("<script>(function(){var titles=" + titles + ",sent=null;function sync(){"
            "var lang=document.documentElement.lang;"
            "if(lang&&lang!==sent){sent=lang;document.cookie=" + key + "+'='+encodeURIComponent(lang)"
            "+';path=/;SameSite=Lax';}"
            "if(lang!=='zh-CN'){return;}"
            "document.querySelectorAll('.toast-title').forEach(function(el){el.childNodes.forEach(function(node){"
            "var word=node.nodeType===3?node.data.trim():'';if(titles[word]){node.data=titles[word]+' ';}});});}"
            "new MutationObserver(sync).observe(document.documentElement,"
            "{subtree:true,childList:true,characterData:true,attributes:true,attributeFilter:['lang']});sync();"
            "})();</script>")


def remember_locale_js() -> str:
    """Client-side part of saving the language: store it for this browser and reload so it takes effect."""
    key = json.dumps(STORAGE_KEY)
    return ("(lang) => { let before = null; try { before = localStorage.getItem(" + key + "); "
            "localStorage.setItem(" + key + ", lang); } catch (e) {} "
            "if ((before || 'Auto') !== lang) { setTimeout(() => window.location.reload(), 800); } return lang; }")
