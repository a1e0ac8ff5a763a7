# Unloading reads this file again, and after a site rebuild it may not be the file that was
# loaded (or a hidden stand-in for one the rebuild removed): then evaluate that one, from the
# tree the shell loaded it from (kept for modules: keep_days), instead of this one. `continue`
# ends a modulefile without an error (Environment Modules 4+).
set hd_tree {{ record.tree }}
set hd_key {{ record.variable|tcl }}
if {[module-info mode unload] && [info exists ::env($hd_key)]} {
    set hd_was $::env($hd_key)
    set hd_old [file join {{ record.trees|tcl }} $hd_was {{ record.path|tcl }}]
    if {$hd_was ne $hd_tree && [regexp {^[0-9a-f]+$} $hd_was]} {
        if {[file readable $hd_old]} {
            source $hd_old
            continue
        }
        puts stderr "[module-info name] was loaded from a module tree removed since (modules: keep_days): what it set may stay; start a new shell"
    }
}
setenv $hd_key $hd_tree
