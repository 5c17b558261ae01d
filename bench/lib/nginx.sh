# Debian's nginx on loopback for the benches (sourced; bash): a config in a scratch directory.
#
# nginx_conf DIR PORT WORKERS SERVER writes DIR/nginx.conf: in the foreground, WORKERS worker
# processes, no access log, every temp path inside DIR, keep-alive without a request limit (a load
# generator's connections are never closed under it), and one server on 127.0.0.1:PORT whose
# block holds SERVER (e.g. 'root /srv/www;'). Start it with: nginx -p DIR -c DIR/nginx.conf &
nginx_conf() {
  local dir=$1 port=$2 workers=$3 server=$4
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  keepalive_requests 100000000;
  server { listen 127.0.0.1:$port; $server }
}
CONF
}
