"""The display's own words (status bar, technician menu), in zh-CN and en.

Words about a check (prompts, verdicts, reasons, faults) belong to the screen model in
`sentinel/screens.py` and `sentinel/policy.py`; these are only the chrome around them.
"""

from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    # status bar
    "online": ("在线", "Online"),
    "offline": ("离线", "Offline"),
    "outbox": ("{n}条待上传", "{n} to upload"),  # records waiting to upload, not people waiting
    "checked_at": ("核验时间 {t}", "Checked at {t}"),
    # technician menu
    "menu_title": ("技术员菜单", "Technician menu"),
    "pin_title": ("请输入技术员密码", "Technician PIN"),
    "pin_wrong": ("密码错误，还可尝试 {n} 次", "Wrong PIN: {n} more tries"),
    "pin_locked": ("错误次数过多，请 {s} 秒后再试", "Too many wrong PINs: wait {s} s"),
    "pin_checking": ("正在验证…", "Checking..."),
    "pin_not_set": ("未设置技术员密码（display.technician_pin_hash）", "No technician PIN set (display.technician_pin_hash)"),
    "ok": ("确定", "OK"),
    "back": ("返回", "Back"),
    "delete": ("删除", "Delete"),
    "cancel": ("取消", "Cancel"),
    "close": ("退出", "Exit"),
    "device": ("设备状态", "Device"),
    "network": ("网络状态", "Network"),
    "gate": ("闸机测试", "Gate test"),
    "sound": ("声音测试", "Sound test"),
    "preview": ("摄像头预览", "Camera view"),
    "outbox_status": ("待传记录", "Outbox"),
    "reload": ("重新加载配置", "Reload config"),
    "not_wired": ("此功能未接入", "Not available on this device"),
    "busy": ("请稍候…", "Working..."),
    "action_failed": ("失败：{e}", "Failed: {e}"),
    "sound_played": ("已播放：通行、禁止提示音和语音", "Played: pass and deny tones and voice"),
    "sound_off": ("无音频设备", "No audio device"),
    "sound_muted": ("配置为静音（display.mute），测试仍播放", "Muted in config (display.mute); test plays anyway"),
    "volume": ("音量", "Volume"),
    "preview_info": ("画面 {w}×{h} · 第 {seq} 帧 · 点击返回", "Frame {w}×{h} · #{seq} · tap to go back"),
    "preview_none": ("暂无画面 · 点击返回", "No frame yet · tap to go back"),
    "choose": ("请选择一项", "Choose an item"),
}


def text(key: str, language: str, **params: object) -> str:
    zh, en = STRINGS[key]
    return (zh if language == "zh-CN" else en).format(**params)
