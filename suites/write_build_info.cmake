# Writes the build-information header at build time (so the git commit is the one being built),
# touching the file only when its content changes. Called by the longseq_build_info target.
execute_process(COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${SOURCE_ROOT} OUTPUT_VARIABLE LONGSEQ_GIT_COMMIT
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
execute_process(COMMAND git status --porcelain --untracked-files=no
  WORKING_DIRECTORY ${SOURCE_ROOT} OUTPUT_VARIABLE longseq_git_changes ERROR_QUIET)
if(NOT LONGSEQ_GIT_COMMIT)
  set(LONGSEQ_GIT_COMMIT unknown)
elseif(longseq_git_changes)
  string(APPEND LONGSEQ_GIT_COMMIT "+changes")
endif()
configure_file(${INPUT} ${OUTPUT}.new @ONLY)
file(COPY_FILE ${OUTPUT}.new ${OUTPUT} ONLY_IF_DIFFERENT)
