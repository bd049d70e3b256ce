# bash completion for pacer; installed as share/bash-completion/completions/pacer.
# Completes options, subcommands, --progress values and, for scripts, *.lua files.
# spec/cli_help_spec.lua checks that every option of `pacer --help` is here.

_pacer_files() { # $@: file name suffixes to offer (none: any file); directories always
  local IFS=$'\n' ext
  compopt -o filenames 2>/dev/null
  if [ $# -eq 0 ]; then
    COMPREPLY+=($(compgen -f -- "$cur"))
    return
  fi
  COMPREPLY+=($(compgen -d -- "$cur"))
  for ext in "$@"; do
    COMPREPLY+=($(compgen -f -X "!*$ext" -- "$cur"))
  done
}

_pacer() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local opts="-e -i -v -vv --verbose -q --quiet --progress= --events --stats --metrics --threshold --workers -h --help --version"
  local mock_opts="--host --port --rate --burst --mode --fail --fail-status --drop --latency --key --no-headers --help"
  COMPREPLY=()

  # the subcommand, if any: the first word that is not an option (nor an option's value)
  local i sub="" word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    case $word in
      -e | --events | --stats | --metrics | --threshold | --workers) i=$((i + 1)) ;;
      =) i=$((i + 1)) ;; # --progress = auto, when COMP_WORDBREAKS splits at '='
      -*) ;;
      *) sub=$word; break ;;
    esac
  done

  case $sub in
    mock)
      case $prev in
        --mode) COMPREPLY=($(compgen -W "gcra fixed" -- "$cur")); return ;;
        --host) COMPREPLY=($(compgen -W "127.0.0.1" -- "$cur")); return ;;
        --port | --rate | --burst | --fail | --fail-status | --drop | --latency | --key) return ;;
      esac
      COMPREPLY=($(compgen -W "$mock_opts" -- "$cur"))
      return ;;
    report)
      case $prev in
        -o) _pacer_files .svg .html; return ;;
        --title) return ;;
      esac
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "-o --title --help" -- "$cur"))
      else
        _pacer_files .jsonl
      fi
      return ;;
    job)
      if [ "$i" -eq $((COMP_CWORD - 1)) ]; then
        COMPREPLY=($(compgen -W "status export" -- "$cur"))
      elif [ "$prev" = -o ]; then
        _pacer_files .jsonl .csv
      elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "-o" -- "$cur"))
      else
        _pacer_files
      fi
      return ;;
    "") ;;
    *) _pacer_files; return ;; # the script's own arguments
  esac

  case $prev in
    -e) return ;;
    --metrics) COMPREPLY=($(compgen -W "127.0.0.1:9464" -- "$cur")); return ;;
    --workers) COMPREPLY=($(compgen -W "2 4" -- "$cur")); return ;;
    --threshold) COMPREPLY=($(compgen -W "'p99<300ms' 'errors<1%' 'throttled==0' 'ratio<1.05'" -- "$cur")); return ;;
    --events) _pacer_files .jsonl; return ;;
    --stats) _pacer_files .json; return ;;
  esac
  # --progress=VALUE: one word, or three (--progress, =, VALUE) when '=' breaks words
  if [ "$cur" = = ] && [ "$prev" = --progress ]; then
    COMPREPLY=($(compgen -W "auto plain off"))
    return
  elif [ "$prev" = = ] && [ "${COMP_WORDS[COMP_CWORD - 2]}" = --progress ]; then
    COMPREPLY=($(compgen -W "auto plain off" -- "$cur"))
    return
  fi
  case $cur in
    --progress=*)
      COMPREPLY=($(compgen -W "auto plain off" -- "${cur#--progress=}"))
      return ;;
    -*)
      COMPREPLY=($(compgen -W "$opts" -- "$cur"))
      [ "${COMPREPLY[0]}" = --progress= ] && compopt -o nospace 2>/dev/null
      return ;;
  esac
  COMPREPLY=($(compgen -W "mock report job" -- "$cur"))
  _pacer_files .lua
}

complete -F _pacer pacer
