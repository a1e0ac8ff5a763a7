-- Unloading reads this file again, and after a site rebuild it may not be the file that was
-- loaded (or a hidden stand-in for one the rebuild removed): then evaluate that one, from the
-- tree the shell loaded it from (kept for modules: keep_days), instead of this one.
local hd_tree, hd_key = "{{ record.tree }}", {{ record.variable|lua }}
local hd_was = os.getenv(hd_key)
if mode() == "unload" and hd_was and hd_was ~= hd_tree and hd_was:match("^%x+$") then
    local hd_old = loadfile({{ record.trees|lua }} .. "/" .. hd_was .. {{ ("/" ~ record.path)|lua }}, "t", _ENV)
    if hd_old then
        hd_old()
        return
    end
    LmodMessage(myModuleFullName() .. " was loaded from a module tree removed since (modules: keep_days): what it set may stay; start a new shell")
end
setenv(hd_key, hd_tree)
