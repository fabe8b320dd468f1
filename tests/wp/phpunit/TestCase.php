<?php
/**
 * Base class: real WordPress, real bridge; restores what a test changes (no transaction rollback
 * exists outside WordPress's own test library, so each test cleans up after itself).
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Lifecycle;
use KycBridge\Settings;

/**
 * Thrown instead of wp_die() so that PHPUnit keeps running.
 */
class WP_Die_Exception extends \Exception {
}

/**
 * Thrown instead of a redirect (and its exit).
 */
class Redirect_Exception extends \Exception {
}

/**
 * Helpers shared by the plugin's tests.
 */
abstract class TestCase extends \PHPUnit\Framework\TestCase {

	/**
	 * Users created by the test.
	 *
	 * @var int[]
	 */
	private $created_users = array();

	/**
	 * Settings before the test.
	 *
	 * @var mixed
	 */
	private $saved_settings;

	/**
	 * Token before the test.
	 *
	 * @var string
	 */
	private $saved_token;

	/**
	 * What tests/test_wp_plugin.py seeded at the bridge.
	 *
	 * @return array
	 */
	protected static function fixtures() {
		static $fixtures = null;
		if ( null === $fixtures ) {
			$fixtures = json_decode( file_get_contents( getenv( 'KYCB_TEST_FIXTURES' ) ), true );
		}
		return $fixtures;
	}

	protected function setUp(): void {
		parent::setUp();
		$this->saved_settings = get_option( Settings::OPTION );
		$this->saved_token    = Settings::token();
		Lifecycle::delete_transients();
		wp_set_current_user( 0 );
		$_GET = array();
		add_filter( 'wp_die_handler', array( $this, 'die_handler_name' ) );
		add_filter( 'wp_redirect', array( $this, 'redirect_instead' ), 1 );
	}

	protected function tearDown(): void {
		remove_filter( 'wp_die_handler', array( $this, 'die_handler_name' ) );
		remove_filter( 'wp_redirect', array( $this, 'redirect_instead' ), 1 );
		update_option( Settings::OPTION, $this->saved_settings );
		Settings::set_token( $this->saved_token );
		foreach ( $this->created_users as $id ) {
			wp_delete_user( $id );
		}
		$this->created_users = array();
		Lifecycle::delete_transients();
		wp_set_current_user( 0 );
		$_GET = array();
		parent::tearDown();
	}

	/**
	 * The wp_die handler.
	 *
	 * @return callable
	 */
	public function die_handler_name() {
		return array( $this, 'die_handler' );
	}

	/**
	 * Throw instead of dying.
	 *
	 * @param string|\WP_Error $message Message.
	 * @param string           $title   Title.
	 * @param array|int        $args    Arguments.
	 * @throws WP_Die_Exception Always.
	 */
	public function die_handler( $message, $title = '', $args = array() ) {
		$code = is_array( $args ) && isset( $args['response'] ) ? (int) $args['response'] : (int) $args;
		throw new WP_Die_Exception( is_wp_error( $message ) ? $message->get_error_message() : (string) $message, $code );
	}

	/**
	 * Throw instead of redirecting.
	 *
	 * @param string $location Where to.
	 * @throws Redirect_Exception Always.
	 */
	public function redirect_instead( $location ) {
		throw new Redirect_Exception( $location );
	}

	/**
	 * A user that is deleted after the test.
	 *
	 * @param string $email      Email (seeded at the bridge or not).
	 * @param string $role       Role.
	 * @param string $first_name First name.
	 * @return int
	 */
	protected function user( $email, $role = 'subscriber', $first_name = '' ) {
		$existing = get_user_by( 'email', $email );
		if ( $existing ) {
			wp_delete_user( $existing->ID );
		}
		$id = wp_insert_user(
			array(
				'user_login' => 'kycbt_' . substr( md5( $email . microtime() ), 0, 10 ),
				'user_email' => $email,
				'user_pass'  => wp_generate_password(),
				'role'       => $role,
				'first_name' => $first_name,
			)
		);
		$this->assertIsInt( $id );
		$this->created_users[] = $id;
		return $id;
	}

	/**
	 * Log a new user with this email in.
	 *
	 * @param string $email Email.
	 * @param string $role  Role.
	 * @return int
	 */
	protected function log_in( $email, $role = 'subscriber' ) {
		$id = $this->user( $email, $role );
		wp_set_current_user( $id );
		return $id;
	}

	/**
	 * Change settings for this test.
	 *
	 * @param array $changes Settings.
	 */
	protected function settings( $changes ) {
		update_option( Settings::OPTION, array_merge( Settings::get(), $changes ) );
		Lifecycle::delete_transients();
	}

	/**
	 * Point the plugin at a port where nothing listens.
	 */
	protected function bridge_down() {
		$this->settings( array( 'bridge_url' => 'http://127.0.0.1:' . self::fixtures()['closed_port'] ) );
	}

	/**
	 * Answer the bridge's KYC lookups for one email with this body (pre_http_request) while `$fn`
	 * runs: a bridge state the seeded bridge does not have.
	 *
	 * @param string   $email Email.
	 * @param array    $body  The lookup's JSON.
	 * @param callable $fn    What runs meanwhile.
	 * @return mixed What $fn returns.
	 */
	protected function with_kyc_answer( $email, $body, $fn ) {
		$fake = function ( $pre, $args, $url ) use ( $email, $body ) {
			unset( $args );
			if ( false === strpos( $url, '/api/v1/contacts/' . rawurlencode( $email ) . '/kyc' ) ) {
				return $pre;
			}
			return array(
				'headers'  => array(),
				'body'     => wp_json_encode( array_merge( array( 'email' => $email ), $body ) ),
				'response' => array(
					'code'    => 200,
					'message' => 'OK',
				),
				'cookies'  => array(),
			);
		};
		add_filter( 'pre_http_request', $fake, 10, 3 );
		try {
			return $fn();
		} finally {
			remove_filter( 'pre_http_request', $fake, 10 );
		}
	}

	/**
	 * Output of a callable.
	 *
	 * @param callable $fn Callable.
	 * @return string
	 */
	protected function output( $fn ) {
		ob_start();
		try {
			$fn();
		} finally {
			$out = ob_get_clean();
		}
		return $out;
	}
}
