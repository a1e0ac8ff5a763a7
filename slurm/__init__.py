# The job-script templates in this folder ship inside the package as hdmodules.slurm_files,
# so that an installed hdmodules finds them; the shell scripts here are for developers and CI.
