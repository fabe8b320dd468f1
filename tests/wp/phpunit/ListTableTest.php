<?php
/**
 * The review queue and inquiries list tables: what they ask the bridge, paging by the screen
 * option, sorting, filters, and which row actions each user gets.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Admin_Page;
use KycBridge\Bridge_Client;
use KycBridge\Inquiries_Table;
use KycBridge\Lifecycle;

/**
 * Inquiries_Table.
 */
class ListTableTest extends TestCase {

	protected function setUp(): void {
		parent::setUp();
		require_once KYCB_PLUGIN_DIR . 'includes/class-inquiries-table.php';
	}

	protected function tearDown(): void {
		delete_user_meta( 1, Lifecycle::PER_PAGE_OPTION );
		unset( $_REQUEST['paged'] );
		parent::tearDown();
	}

	/**
	 * A prepared table.
	 *
	 * @param string $mode QUEUE or ALL.
	 * @return Inquiries_Table
	 */
	private function table( $mode ) {
		$table = new Inquiries_Table( $mode, Bridge_Client::from_settings(), array( 'screen' => 'toplevel_page_' . Admin_Page::SLUG ) );
		$table->prepare_items();
		$this->assertNull( $table->error );
		return $table;
	}

	public function test_queue_asks_for_cases_in_review_overdue_first() {
		wp_set_current_user( 1 );
		$table = new Inquiries_Table( Inquiries_Table::QUEUE, Bridge_Client::from_settings(), array( 'screen' => 'toplevel_page_' . Admin_Page::SLUG ) );
		$query = $table->query();
		$this->assertSame( 'needs_review', $query['status'] );
		$this->assertSame( '1', $query['overdue_first'] );
		$this->assertSame( array( 'waiting', 'asc' ), array( $query['sort'], $query['order'] ) );
		$this->assertArrayHasKey( 'waiting', $table->get_columns() );

		$_GET  = array(
			'orderby' => 'name',
			'order'   => 'desc',
		);
		$query = $table->query();
		$this->assertSame( array( 'name', 'desc', '' ), array( $query['sort'], $query['order'], $query['overdue_first'] ) );
	}

	public function test_inquiries_sort_and_filter_only_by_known_values() {
		wp_set_current_user( 1 );
		$_GET  = array(
			'orderby'   => 'email',
			'order'     => 'asc',
			'status'    => 'approved',
			'user_type' => 'investor',
			'level'     => 'enhanced',
			's'         => 'Admin',
		);
		$table = new Inquiries_Table( Inquiries_Table::ALL, Bridge_Client::from_settings(), array( 'screen' => 'toplevel_page_' . Admin_Page::SLUG ) );
		$query = $table->query();
		$this->assertSame( array( 'email', 'asc', 'approved', 'investor', 'enhanced', 'Admin' ), array( $query['sort'], $query['order'], $query['status'], $query['user_type'], $query['level'], $query['search'] ) );
		$table->prepare_items();
		$this->assertSame( array( self::fixtures()['people']['admin_actions']['inquiry_id'] ), array_column( $table->items, 'inquiry_id' ) );

		$_GET  = array(
			'orderby' => 'secret_column',
			'order'   => 'sideways',
			'status'  => 'bogus',
			'level'   => 'gold',
		);
		$query = $table->query();
		$this->assertSame( array( 'updated_at', 'desc', '', '' ), array( $query['sort'], $query['order'], $query['status'], $query['level'] ) );
	}

	public function test_rows_per_page_come_from_the_screen_option_and_pages_follow() {
		wp_set_current_user( 1 );
		update_user_meta( 1, Lifecycle::PER_PAGE_OPTION, 2 );
		$first = $this->table( Inquiries_Table::ALL );
		$this->assertCount( 2, $first->items );
		$total = $first->get_pagination_arg( 'total_items' );
		$this->assertGreaterThan( 4, $total );
		$this->assertSame( (int) ceil( $total / 2 ), $first->get_pagination_arg( 'total_pages' ) );

		$_REQUEST['paged'] = 2;
		$second            = $this->table( Inquiries_Table::ALL );
		$this->assertCount( 2, $second->items );
		$this->assertEmpty( array_intersect( array_column( $first->items, 'inquiry_id' ), array_column( $second->items, 'inquiry_id' ) ) );
	}

	public function test_screen_option_is_kept_within_limits() {
		$this->assertSame( 100, Admin_Page::save_per_page( false, Lifecycle::PER_PAGE_OPTION, '5000' ) );
		$this->assertSame( 1, Admin_Page::save_per_page( false, Lifecycle::PER_PAGE_OPTION, '0' ) );
		$this->assertSame( 35, Admin_Page::save_per_page( false, Lifecycle::PER_PAGE_OPTION, '35' ) );
		$this->assertFalse( Admin_Page::save_per_page( 7, 'some_other_option', '35' ) );
		$this->assertSame( 100, apply_filters( 'set_screen_option_' . Lifecycle::PER_PAGE_OPTION, false, Lifecycle::PER_PAGE_OPTION, '999' ) );
	}

	public function test_row_actions_follow_the_users_capabilities() {
		$person = self::fixtures()['people']['admin_actions'];
		$_GET   = array( 's' => $person['email'] );

		wp_set_current_user( 1 );
		$html = $this->output( array( $this->table( Inquiries_Table::ALL ), 'display' ) );
		foreach ( array( 'resync', 'resend', 'export' ) as $action ) {
			$this->assertStringContainsString( 'kycb-action--' . $action, $html );
		}
		$this->assertMatchesRegularExpression( '/do=resync&#038;target=' . $person['inquiry_id'] . '&#038;_wpnonce=[0-9a-f]{10}/', $html );

		// A viewer (the page's capability only) sees the person, not the fixes.
		$viewer = $this->log_in( 'list-table-viewer@example.test', 'editor' );
		get_userdata( $viewer )->add_cap( Lifecycle::CAPABILITY );
		$html = $this->output( array( $this->table( Inquiries_Table::ALL ), 'display' ) );
		$this->assertStringContainsString( 'data-inquiry-id="' . $person['inquiry_id'] . '"', $html );
		$this->assertStringNotContainsString( 'kycb-action--', $html );
	}
}
