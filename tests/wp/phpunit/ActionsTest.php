<?php
/**
 * The admin's fixes through admin-post.php: capability and nonce first, then the bridge call,
 * then a notice; export and erasure through WordPress's privacy tools.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Admin_Actions;
use KycBridge\Bridge_Client;
use KycBridge\Lifecycle;
use KycBridge\Settings;

/**
 * Admin_Actions.
 */
class ActionsTest extends TestCase {

	protected function tearDown(): void {
		$_REQUEST = array();
		$_POST    = array();
		unset( $_SERVER['HTTP_REFERER'] );
		parent::tearDown();
	}

	/**
	 * Run the admin-post handler as a request with these parameters would.
	 *
	 * @param string $action Action.
	 * @param string $target Target.
	 * @param array  $extra  More POST fields (confirm) or a wrong nonce.
	 * @return string Where the handler redirected to.
	 */
	private function submit( $action, $target, $extra = array() ) {
		$_POST    = array_merge(
			array(
				'action'   => Admin_Actions::ACTION,
				'do'       => $action,
				'target'   => $target,
				'_wpnonce' => wp_create_nonce( Admin_Actions::nonce_action( $action, $target ) ),
			),
			$extra
		);
		$_REQUEST = $_POST;
		$_SERVER['HTTP_REFERER'] = admin_url( 'admin.php?page=kyc-verifications&tab=inquiries' );
		try {
			Admin_Actions::handle();
		} catch ( Redirect_Exception $redirect ) {
			return $redirect->getMessage();
		}
		$this->fail( 'the handler did not redirect' );
	}

	/**
	 * The notice the next page view shows, and forget it.
	 *
	 * @return string
	 */
	private function notice() {
		return $this->output( array( Admin_Actions::class, 'notices' ) );
	}

	/**
	 * The bridge's jobs about a person.
	 *
	 * @param string $email Email.
	 * @return array
	 */
	private function jobs( $email ) {
		$person = Bridge_Client::from_settings()->contact( $email );
		$this->assertIsArray( $person );
		return $person['jobs'];
	}

	public function test_each_action_needs_its_capability() {
		$this->log_in( 'actions-editor@example.test', 'editor' );
		foreach ( array_keys( Admin_Actions::ACTIONS ) as $action ) {
			try {
				$this->submit( $action, self::fixtures()['people']['admin_actions']['email'] );
				$this->fail( "$action ran for an editor" );
			} catch ( WP_Die_Exception $refused ) {
				$this->assertSame( 403, $refused->getCode(), $action );
			}
		}
	}

	public function test_a_wrong_or_reused_nonce_is_refused_and_nothing_happens() {
		wp_set_current_user( 1 );
		$person = self::fixtures()['people']['admin_actions'];
		$before = count( $this->jobs( $person['email'] ) );
		// A nonce for another person must not work for this one.
		$other = wp_create_nonce( Admin_Actions::nonce_action( 'resend', 'someone-else@example.test' ) );
		try {
			$this->submit( 'resend', $person['email'], array( '_wpnonce' => $other ) );
			$this->fail( 'a nonce for another target was accepted' );
		} catch ( WP_Die_Exception $refused ) {
			$this->assertSame( 403, $refused->getCode() );
		}
		$this->assertCount( $before, $this->jobs( $person['email'] ) );
	}

	public function test_resend_link_queues_the_n8n_event_and_says_so() {
		wp_set_current_user( 1 );
		$person = self::fixtures()['people']['admin_actions'];
		$back   = $this->submit( 'resend', $person['email'] );
		$this->assertStringContainsString( 'tab=inquiries', $back );
		$this->assertStringContainsString( 'notice-success', $this->notice() );
		$this->assertContains( 'kyc.link_requested', array_column( $this->jobs( $person['email'] ), 'event_type' ) );
		$this->assertSame( '', $this->notice() );  // shown once
	}

	public function test_resync_and_retry_report_what_the_bridge_did() {
		wp_set_current_user( 1 );
		$person = self::fixtures()['people']['admin_actions'];
		$this->submit( 'resync', $person['inquiry_id'] );
		$this->assertMatchesRegularExpression( '/notice-success.*CRM sync of ' . $person['inquiry_id'] . '/s', $this->notice() );
		$this->submit( 'retry', $person['email'] );
		$this->assertMatchesRegularExpression( '/notice-success.*\d+ failed jobs? (is|are) queued again/s', $this->notice() );
		$this->submit( 'resync', 'inq_never_seen_here' );
		$this->assertMatchesRegularExpression( '/notice-error.*HTTP 404.*no such inquiry/s', $this->notice() );
	}

	public function test_read_only_token_gets_a_notice_naming_the_admin_token() {
		wp_set_current_user( 1 );
		Settings::set_token( self::fixtures()['bridge_read_token'] );
		$this->submit( 'resync', self::fixtures()['people']['admin_actions']['inquiry_id'] );
		$this->assertMatchesRegularExpression( '/notice-error.*read-only BRIDGE_READ_TOKEN.*BRIDGE_ADMIN_TOKEN/s', $this->notice() );
		// The front end's lookups work with it.
		$this->assertSame( 'approved', Bridge_Client::from_settings()->kyc_status( self::fixtures()['people']['admin_actions']['email'] )['status'] );
	}

	public function test_export_writes_the_zip_through_the_privacy_tools() {
		wp_set_current_user( 1 );
		$person = self::fixtures()['people']['admin_export'];
		$this->submit( 'export', $person['email'] );
		$notice = $this->notice();
		$this->assertStringContainsString( 'notice-success', $notice );
		$this->assertMatchesRegularExpression( '#href="([^"]+\.zip)"#', $notice );
		preg_match( '#href="([^"]+\.zip)"#', $notice, $link );
		$file = wp_privacy_exports_dir() . basename( $link[1] );
		$this->assertFileExists( $file );
		$zip = new \ZipArchive();
		$this->assertTrue( $zip->open( $file ) );
		$html = $zip->getFromName( 'index.html' );
		$zip->close();
		$this->assertStringContainsString( $person['inquiry_id'], $html );
		$this->assertStringContainsString( 'Identity verification', $html );
		$request = wp_get_user_request( $this->last_request( $person['email'], 'export_personal_data' ) );
		$this->assertSame( 'request-completed', $request->status );
	}

	public function test_erase_needs_the_confirmation_then_erases_at_the_bridge() {
		wp_set_current_user( 1 );
		$person = self::fixtures()['people']['admin_erase'];
		$this->submit( 'erase', $person['email'] );
		$this->assertMatchesRegularExpression( '/notice-error.*Tick the confirmation/s', $this->notice() );
		$this->assertIsArray( Bridge_Client::from_settings()->contact( $person['email'] ) );

		$this->submit( 'erase', $person['email'], array( 'confirm' => '1' ) );
		$this->assertMatchesRegularExpression( '/notice-success.*is erased.*Retained for legal reasons/s', $this->notice() );
		$gone = Bridge_Client::from_settings()->contact( $person['email'] );
		$this->assertWPError( $gone );
		$this->assertSame( 404, $gone->get_error_data()['status'] );
		$request = wp_get_user_request( $this->last_request( $person['email'], 'remove_personal_data' ) );
		$this->assertSame( 'request-completed', $request->status );
	}

	/**
	 * Assert a WP_Error.
	 *
	 * @param mixed $value Value.
	 */
	private function assertWPError( $value ) {
		$this->assertInstanceOf( \WP_Error::class, $value );
	}

	/**
	 * The newest privacy request of a kind for an email.
	 *
	 * @param string $email Email.
	 * @param string $kind  Action name.
	 * @return int
	 */
	private function last_request( $email, $kind ) {
		$ids = get_posts(
			array(
				'post_type'     => 'user_request',
				'post_name__in' => array( $kind ),
				'title'         => $email,
				'post_status'   => 'any',
				'fields'        => 'ids',
				'numberposts'   => 1,
				'orderby'       => 'ID',
				'order'         => 'DESC',
			)
		);
		$this->assertNotEmpty( $ids );
		return (int) $ids[0];
	}
}
