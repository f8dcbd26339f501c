// The executor and stream types of the server's connections: each session
// runs on a strand of the server's io_context, named by its concrete type
// rather than the type-erased any_io_executor, so that the many copies of
// the executor Beast's and Asio's asynchronous operations make cost a
// reference count, not a type-erased copy, on every read and write.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/basic_stream.hpp>

namespace nightshift::api {

using IoStrand = boost::asio::strand<boost::asio::io_context::executor_type>;
// A socket as the acceptor hands it over, already on its session's strand.
using StrandSocket = boost::asio::ip::tcp::socket::rebind_executor<IoStrand>::other;
using TcpStream = boost::beast::basic_stream<boost::asio::ip::tcp, IoStrand>;

}  // namespace nightshift::api
