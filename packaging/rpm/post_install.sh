# indilookup %post.  cargo-generate-rpm cannot put symlinks into a package,
# so the applet links are made here (and removed in %postun).  A name that
# exists and is not a link to indilookup (the C programs of the indimail
# package) is left alone, with a warning.  The site's settings in
# /etc/indilookup are %config(noreplace) and are not touched.  The service is
# not enabled or started.
link() {
    target=$1 name=$2
    if [ -L "$name" ]; then
        case $(readlink "$name") in
        indilookup | */indilookup) ln -sfn "$target" "$name" ;;
        *) echo "indilookup: $name is a symlink to $(readlink "$name"); left as it is" >&2 ;;
        esac
    elif [ -e "$name" ]; then
        echo "indilookup: $name exists and is not a symlink; left as it is" >&2
    else
        mkdir -p "$(dirname "$name")"
        ln -s "$target" "$name"
    fi
}
link indilookup /usr/sbin/inlookup
link indilookup /usr/sbin/inquerytest
link indilookup /usr/sbin/vchkpass
link ../../../sbin/indilookup /usr/libexec/indimail/imapmodules/authindi
if [ -d /run/systemd/system ]; then
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/indilookup.conf || :
    systemctl --system daemon-reload >/dev/null 2>&1 || :
fi
exit 0
